// Lint rules, including the trust-boundary rules: imports point one way only.
//   format, wire, errors  -> import nothing of ours (errors only)
//   storage (core)        -> browser-safe; adapters under storage/node may use node:
//   client                -> the device SDK, browser-safe; never imports the vault or HSM
//   backup                -> the engine on the device; never imports the vault or HSM. Its core
//                            (every room, platform/, api/core/engine.ts) imports no node: and
//                            nothing Node-only of ours: Node's implementations live in
//                            backup/node/ (docs/ARCHITECTURE.md, "The engine everywhere")
//   device                -> Node-only device profile (files); never imports the vault or HSM
//   hsm                   -> the only code that touches server secrets; imports format/errors only
//   vault                 -> the server; never imports device code
//   ui (server)           -> Node-only local settings screen; runs the CLI's commands; never
//                            imports the vault or HSM
//   ui/web                -> the settings screen's pages, browser-only: format, client, errors
//   cli                   -> wires everything
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const nodeBuiltins = {
  group: ['node:*'],
  message: 'Browser-safe folder: no node: imports here (see docs/ARCHITECTURE.md).',
};
/** The engine core runs without Node (React Native, browsers): no node:, no Node-only folder. */
const engineCore = [
  {
    ...nodeBuiltins,
    message: 'Engine core: no node: imports; Node code lives in src/backup/node/.',
  },
  {
    group: ['../node/*', '../../node/*', './node/*'],
    message: 'Engine core: src/backup/node/ and src/node/ are Node-only (docs/ARCHITECTURE.md).',
  },
];
const deny = (...folders) =>
  folders.map((f) => ({
    group: [`**/${f}/**`, `../${f}/*`, `../../${f}/*`],
    message: `Trust boundary: this folder must not import ${f}/ (see docs/ARCHITECTURE.md).`,
  }));

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.tmp/**', 'vectors/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { console: 'readonly', process: 'readonly', URL: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      '@typescript-eslint/no-explicit-any': 'error',
      'no-console': 'off',
    },
  },
  {
    files: ['src/format/**/*.ts', 'src/wire/**/*.ts', 'src/errors.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [nodeBuiltins, ...deny('storage', 'backup', 'client', 'vault', 'hsm', 'cli')] },
      ],
    },
  },
  {
    // Node-only helpers shared by every Node-side folder: they import nothing of ours.
    files: ['src/node/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: deny('format', 'storage', 'backup', 'client', 'device', 'vault', 'hsm', 'cli'),
        },
      ],
    },
  },
  {
    files: ['src/storage/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [nodeBuiltins, ...deny('backup', 'client', 'vault', 'hsm', 'cli')] },
      ],
    },
  },
  {
    files: ['src/storage/node/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: deny('backup', 'client', 'vault', 'hsm', 'cli') },
      ],
    },
  },
  {
    files: ['src/client/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [nodeBuiltins, ...deny('backup', 'vault', 'hsm', 'cli')] },
      ],
    },
  },
  {
    files: ['src/backup/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: deny('vault', 'hsm', 'cli') }] },
  },
  {
    // The engine core's own files outside the rooms: the platform interfaces and their
    // portable implementations, the public types and the portable entry points.
    files: ['src/backup/platform/**/*.ts', 'src/backup/{api,core,engine}.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [...engineCore, ...deny('vault', 'hsm', 'cli', 'client', 'device')] },
      ],
    },
  },
  // The engine's rooms (docs/ARCHITECTURE.md): imports point down only.
  //   repository            -> the store's objects; imports no other room
  //   workers               -> the thread pool; repository (and the archiver's chunker)
  //   archiver, restorer,   -> repository and workers; never each other
  //   checker
  //   commands              -> wire the rooms (the public functions)
  // Every room is engine core (no node:); src/backup/node/ implements the platform for Node.
  ...[
    ['repository', ['workers', 'archiver', 'restorer', 'checker', 'commands']],
    ['workers', ['restorer', 'checker', 'commands']],
    ['archiver', ['restorer', 'checker', 'commands']],
    ['restorer', ['archiver', 'checker', 'commands']],
    ['checker', ['archiver', 'restorer', 'commands']],
    ['commands', []],
  ].map(([room, below]) => ({
    files: [`src/backup/${room}/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            ...engineCore,
            ...deny('vault', 'hsm', 'cli'),
            ...below.map((f) => ({
              group: [`../${f}/*`],
              message: `Engine rooms: ${room}/ must not import ${f}/ (see docs/ARCHITECTURE.md).`,
            })),
          ],
        },
      ],
    },
  })),
  {
    // The device profile (Node-only: files); like the engine, never imports the vault or HSM.
    files: ['src/device/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: deny('vault', 'hsm', 'cli') }] },
  },
  {
    files: ['src/hsm/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: deny('storage', 'backup', 'client', 'device', 'vault', 'cli') },
      ],
    },
  },
  {
    // The local settings screen's server: reuses the CLI and the engine, never the vault/HSM.
    files: ['src/ui/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: deny('vault', 'hsm') }] },
  },
  // The settings screen's pages run in the browser: no node:, nothing Node-only of ours, and
  // not the UI server beside them (src/ui/*.ts).
  ...[
    ['src/ui/web/*.ts', '^\\.\\./[^/]+\\.js$'],
    ['src/ui/web/*/*.ts', '^\\.\\./\\.\\./[^/]+\\.js$'],
  ].map(([files, server]) => ({
    files: [files],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            nodeBuiltins,
            ...deny('storage', 'backup', 'device', 'vault', 'hsm', 'cli', 'node'),
            { regex: server, message: 'Browser-only folder: src/ui/*.ts is the Node server.' },
          ],
        },
      ],
    },
  })),
  {
    files: ['src/vault/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: deny('backup', 'client', 'device', 'cli') }],
    },
  },
);
