/**
 * A few lines instead of a framework: build elements with attributes, listeners and
 * children. Text is always set as text (never parsed as HTML), so nothing from the API can
 * inject markup.
 */

/** Attribute values: strings are set, `true` sets an empty attribute, false/undefined skip. */
export type Attrs = Record<string, string | number | boolean | undefined | EventListener>;
/** Children: nodes, or strings (as text). Falsy ones are skipped. */
export type Child = Node | string | false | null | undefined;

/** `h('button', { class: 'x', onclick: f }, 'Back up now')` */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, ...children);
  return el;
}

/** Appends children (strings as text). */
export function append(el: Node, ...children: Child[]): void {
  for (const c of children) {
    if (c === false || c === null || c === undefined) continue;
    el.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
  }
}

/** Replaces all children of `el`. */
export function replace(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, ...children);
}

/** SVG element (for the chart). */
export function svg(
  tag: string,
  attrs: Record<string, string | number> = {},
  ...children: Child[]
): SVGElement {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  append(el, ...children);
  return el;
}

let nextId = 0;
/** A page-unique id for label/aria wiring. */
export function uid(prefix: string): string {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

/** A labelled input: returns the wrapper and the input. */
export function field(
  label: string,
  input: Attrs & { type?: string },
  hint?: string,
): { wrap: HTMLDivElement; input: HTMLInputElement } {
  const id = uid('f');
  const hintId = hint ? `${id}-hint` : undefined;
  const el = h('input', { type: 'text', ...input, id, 'aria-describedby': hintId });
  const wrap = h(
    'div',
    {},
    h('label', { for: id }, label),
    hint ? h('p', { class: 'hint', id: hintId }, hint) : null,
    el,
  );
  return { wrap, input: el };
}
