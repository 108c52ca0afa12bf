// organize imports (remove unused) + export names used by siblings: node organize.mjs files...
import ts from 'typescript';
import { readFileSync, writeFileSync } from 'node:fs';
const files = process.argv.slice(2).map((f) => new URL(f, 'file://' + process.cwd() + '/').pathname);
const host = {
  getScriptFileNames: () => files,
  getScriptVersion: () => '1',
  getScriptSnapshot: (f) => { try { return ts.ScriptSnapshot.fromString(readFileSync(f, 'utf8')); } catch { return undefined; } },
  getCurrentDirectory: () => process.cwd(),
  getCompilationSettings: () => ({ module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, strict: true }),
  getDefaultLibFileName: ts.getDefaultLibFilePath,
  fileExists: ts.sys.fileExists, readFile: ts.sys.readFile, readDirectory: ts.sys.readDirectory,
  directoryExists: ts.sys.directoryExists, getDirectories: ts.sys.getDirectories,
};
const ls = ts.createLanguageService(host);
for (const f of files) {
  const changes = ls.organizeImports({ type: 'file', fileName: f }, {}, undefined);
  let text = readFileSync(f, 'utf8');
  for (const c of changes) {
    const edits = [...c.textChanges].sort((a, b) => b.span.start - a.span.start);
    for (const e of edits) text = text.slice(0, e.span.start) + e.newText + text.slice(e.span.start + e.span.length);
  }
  writeFileSync(f, text);
}
