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
// Across packages imports go by package name: the device SDK (`backvault`) never imports the
// vault or the CLI; the vault imports only the SDK's shared protocol pieces.
const denyPackages = (...specifiers) =>
  specifiers.map((s) => ({
    group: [s, `${s}/*`],
    message: `Package boundary: this package must not import ${s} (see docs/ARCHITECTURE.md).`,
  }));
const sdkDeny = (...folders) => [
  ...deny(...folders),
  ...denyPackages('@backvault/vault', '@backvault/cli'),
];
const vaultDeny = (...folders) => [
  ...deny(...folders),
  ...denyPackages(
    '@backvault/cli',
    'backvault/backup',
    'backvault/client',
    'backvault/device',
    'backvault/storage',
  ),
];
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
  {
    ignores: [
      'dist/**',
      'packages/*/dist/**',
      'node_modules/**',
      '.tmp/**',
      'vectors/**',
      'examples/*/dist/**',
    ],
  },
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
    files: [
      'packages/sdk/src/format/**/*.ts',
      'packages/sdk/src/wire/**/*.ts',
      'packages/sdk/src/errors.ts',
    ],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            nodeBuiltins,
            ...sdkDeny('storage', 'backup', 'client', 'vault', 'hsm', 'cli'),
          ],
        },
      ],
    },
  },
  {
    // Node-only helpers shared by every Node-side folder: they import nothing of ours.
    files: ['packages/sdk/src/node/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: sdkDeny(
            'format',
            'storage',
            'backup',
            'client',
            'device',
            'vault',
            'hsm',
            'cli',
          ),
        },
      ],
    },
  },
  {
    files: ['packages/sdk/src/storage/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [nodeBuiltins, ...sdkDeny('backup', 'client', 'vault', 'hsm', 'cli')] },
      ],
    },
  },
  {
    files: ['packages/sdk/src/storage/node/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: sdkDeny('backup', 'client', 'vault', 'hsm', 'cli') },
      ],
    },
  },
  {
    files: ['packages/sdk/src/client/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [nodeBuiltins, ...sdkDeny('backup', 'vault', 'hsm', 'cli')] },
      ],
    },
  },
  {
    files: ['packages/sdk/src/backup/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: sdkDeny('vault', 'hsm', 'cli') }] },
  },
  {
    // The engine core's own files outside the rooms: the platform interfaces and their
    // portable implementations, the public types and the portable entry points.
    files: [
      'packages/sdk/src/backup/platform/**/*.ts',
      'packages/sdk/src/backup/{api,core,engine}.ts',
    ],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [...engineCore, ...sdkDeny('vault', 'hsm', 'cli', 'client', 'device')] },
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
    files: [`packages/sdk/src/backup/${room}/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            ...engineCore,
            ...sdkDeny('vault', 'hsm', 'cli'),
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
    // The CLI's device profile (Node-only: files); never imports the vault or HSM.
    files: ['packages/cli/src/device/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [...deny('vault', 'hsm', 'cli'), ...denyPackages('@backvault/vault')] },
      ],
    },
  },
  {
    files: ['packages/vault/src/hsm/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: vaultDeny('storage', 'backup', 'client', 'device', 'vault', 'cli') },
      ],
    },
  },
  {
    // The local settings screen's server: reuses the CLI and the engine, never the vault/HSM.
    files: ['packages/cli/src/ui/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: deny('vault', 'hsm') }] },
  },
  // The settings screen's pages run in the browser: no node:, nothing Node-only of ours, and
  // not the UI server beside them (src/ui/*.ts).
  ...[
    ['packages/cli/src/ui/web/*.ts', '^\\.\\./[^/]+\\.js$'],
    ['packages/cli/src/ui/web/*/*.ts', '^\\.\\./\\.\\./[^/]+\\.js$'],
  ].map(([files, server]) => ({
    files: [files],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            nodeBuiltins,
            ...deny('storage', 'backup', 'device', 'vault', 'hsm', 'cli', 'node'),
            ...denyPackages(
              '@backvault/vault',
              'backvault/backup',
              'backvault/device',
              'backvault/node',
              'backvault/storage',
            ),
            { regex: server, message: 'Browser-only folder: src/ui/*.ts is the Node server.' },
          ],
        },
      ],
    },
  })),
  {
    files: ['packages/vault/src/vault/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: vaultDeny('backup', 'client', 'device', 'cli') },
      ],
    },
  },
  {
    // The examples import backvault by its package name, as an app does; the web one runs
    // in a browser and must not reach for node: modules (its bundle would not build).
    files: ['examples/web/**/*.mjs'],
    ignores: ['examples/web/build.mjs'],
    languageOptions: {
      globals: { document: 'readonly', fetch: 'readonly', location: 'readonly' },
    },
    rules: { 'no-restricted-imports': ['error', { patterns: [nodeBuiltins] }] },
  },
);
