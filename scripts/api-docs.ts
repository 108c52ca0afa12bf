/**
 * The API reference (docs/api/reference/*.md) rendered from API Extractor's doc model
 * (.tmp/api/*.api.json, written by scripts/api-report.ts): one page per entry point, every
 * export with its declaration and its TSDoc (summary, remarks, parameters, returns,
 * throws), class and interface members below it. No other documenter: the doc model's
 * own reader (@microsoft/api-extractor-model, which api-extractor brings) and ~150 lines.
 */
import {
  ApiDeclaredItem,
  ApiDocumentedItem,
  ApiItemKind,
  ApiModel,
  ApiParameterListMixin,
  type ApiItem,
} from '@microsoft/api-extractor-model';
import {
  DocCodeSpan,
  DocEscapedText,
  DocErrorText,
  DocFencedCode,
  DocLinkTag,
  DocNodeKind,
  DocPlainText,
  StandardTags,
  type DocComment,
  type DocNode,
} from '@microsoft/tsdoc';

/** TSDoc nodes as Markdown. */
function md(node: DocNode | undefined): string {
  if (!node) return '';
  switch (node.kind) {
    case DocNodeKind.PlainText:
      return (node as DocPlainText).text;
    case DocNodeKind.SoftBreak:
      return ' ';
    case DocNodeKind.CodeSpan:
      return `\`${(node as DocCodeSpan).code}\``;
    case DocNodeKind.EscapedText:
      return (node as DocEscapedText).decodedText;
    case DocNodeKind.ErrorText:
      return (node as DocErrorText).text;
    case DocNodeKind.LinkTag: {
      const link = node as DocLinkTag;
      if (link.linkText) return link.linkText;
      if (link.urlDestination) return `<${link.urlDestination}>`;
      const ref = link.codeDestination?.memberReferences
        .map((r) => r.memberIdentifier?.identifier ?? '')
        .join('.');
      return ref ? `\`${ref}\`` : '';
    }
    case DocNodeKind.FencedCode: {
      const f = node as DocFencedCode;
      return `\n\n\`\`\`${f.language}\n${f.code.trimEnd()}\n\`\`\`\n\n`;
    }
    case DocNodeKind.HtmlStartTag:
    case DocNodeKind.HtmlEndTag:
      return '';
    case DocNodeKind.Paragraph:
      return `${node
        .getChildNodes()
        .map(md)
        .join('')
        .replace(/[ \t]+/g, ' ')
        .trim()}\n\n`;
    default:
      return node.getChildNodes().map(md).join('');
  }
}

const clean = (s: string): string => s.replace(/\n{3,}/g, '\n\n').trim();

/** Summary, remarks, parameters, returns and throws of one comment. */
function commentBlock(c: DocComment | undefined): string {
  if (!c) return '';
  const out: string[] = [];
  const summary = clean(md(c.summarySection));
  if (summary) out.push(summary);
  if (c.remarksBlock) out.push(clean(md(c.remarksBlock.content)));
  const params = c.params.blocks.map(
    (p) => `- \`${p.parameterName}\` — ${clean(md(p.content)).replace(/\n+/g, ' ')}`,
  );
  if (params.length) out.push(`Parameters:\n\n${params.join('\n')}`);
  if (c.returnsBlock) out.push(`Returns: ${clean(md(c.returnsBlock.content))}`);
  const throws = c.customBlocks
    .filter((b) => b.blockTag.tagNameWithUpperCase === StandardTags.throws.tagNameWithUpperCase)
    .map((b) => `- ${clean(md(b.content)).replace(/\n+/g, ' ')}`);
  if (throws.length) out.push(`Throws:\n\n${throws.join('\n')}`);
  if (c.deprecatedBlock) out.push(`**Deprecated.** ${clean(md(c.deprecatedBlock.content))}`);
  return out.join('\n\n');
}

const commentOf = (item: ApiItem): DocComment | undefined =>
  item instanceof ApiDocumentedItem ? item.tsdocComment : undefined;

const declaration = (item: ApiItem): string =>
  item instanceof ApiDeclaredItem ? item.excerpt.text.trim().replace(/^export declare /, '') : '';

const code = (text: string): string => (text ? `\`\`\`ts\n${text}\n\`\`\`` : '');

const KIND_ORDER: readonly ApiItemKind[] = [
  ApiItemKind.Class,
  ApiItemKind.Function,
  ApiItemKind.Interface,
  ApiItemKind.TypeAlias,
  ApiItemKind.Enum,
  ApiItemKind.Variable,
  ApiItemKind.Namespace,
];
const KIND_LABEL: Partial<Record<ApiItemKind, string>> = {
  [ApiItemKind.Class]: 'class',
  [ApiItemKind.Function]: 'function',
  [ApiItemKind.Interface]: 'interface',
  [ApiItemKind.TypeAlias]: 'type',
  [ApiItemKind.Enum]: 'enum',
  [ApiItemKind.Variable]: 'constant',
  [ApiItemKind.Namespace]: 'namespace',
};

function memberBlock(member: ApiItem): string {
  const name =
    member.kind === ApiItemKind.Constructor
      ? 'constructor'
      : ApiParameterListMixin.isBaseClassOf(member)
        ? `${member.displayName}()`
        : member.displayName;
  const body = commentBlock(commentOf(member));
  return [`#### ${name}`, code(declaration(member)), body].filter(Boolean).join('\n\n');
}

function itemBlock(item: ApiItem): string {
  const parts = [
    `### ${item.displayName} (${KIND_LABEL[item.kind] ?? item.kind})`,
    code(declaration(item)),
    commentBlock(commentOf(item)),
  ];
  if (item.kind === ApiItemKind.Class || item.kind === ApiItemKind.Interface) {
    for (const m of item.members) parts.push(memberBlock(m));
  } else if (item.kind === ApiItemKind.Enum) {
    for (const m of item.members) parts.push(`- \`${declaration(m)}\``);
  }
  return parts.filter(Boolean).join('\n\n');
}

/**
 * One entry point's reference page, from its doc model file.
 * @param apiJson - path of the `.api.json` file
 * @param importPath - what an app imports, e.g. `backvault/client`
 */
export function renderReference(apiJson: string, importPath: string): string {
  const pkg = new ApiModel().loadPackage(apiJson);
  const entry = pkg.entryPoints[0];
  if (!entry) throw new Error(`${apiJson} has no entry point`);
  const items = [...entry.members].sort(
    (a, b) =>
      KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind) ||
      a.displayName.localeCompare(b.displayName, 'en'),
  );
  const index = items.map((i) => `\`${i.displayName}\``).join(' · ');
  return `${[
    `# \`${importPath}\``,
    '<!-- Generated by `make api-report` from the TSDoc (scripts/api-docs.ts). Do not edit. -->',
    commentBlock(pkg.tsdocComment),
    `\`import { … } from '${importPath}'\` — ${items.length} exports: ${index}`,
    ...items.map(itemBlock),
  ]
    .filter(Boolean)
    .join('\n\n')
    .replace(/\n{3,}/g, '\n\n')}\n`;
}
