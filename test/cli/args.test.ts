import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCommandArgs, type OptionSpec } from '#cli/cli/args.js';
import { hasCode } from '#sdk/errors.js';
import { closest } from '#cli/cli/suggest.js';

const OPTIONS: Record<string, OptionSpec> = {
  'fleet-key': { type: 'string', valueName: 'KEY', description: 'fleet key' },
  repo: { type: 'string', valueName: 'URL', description: 'repository' },
  json: { type: 'boolean', description: 'json' },
  help: { type: 'boolean', short: 'h', description: 'help' },
};

test('a base64url value that starts with "-" is taken as the value', () => {
  // One fleet key in 64 starts with "-"; the fleet test once drew one and failed.
  const key = '-Qm9vdHN0cmFwIGtleSB0aGF0IHN0YXJ0cyB3aXRoIGEgZGFzaA';
  const r = parseCommandArgs(['--fleet-key', key], OPTIONS, []);
  assert.equal(r.values['fleet-key'], key);
});

test('a forgotten value followed by another option is still a usage error', () => {
  for (const next of ['--json', '-h']) {
    assert.throws(
      () => parseCommandArgs(['--repo', next], OPTIONS, []),
      (e: unknown) => hasCode(e, 'USAGE') && /needs a value/.test((e as Error).message),
    );
  }
});

test('--opt=VALUE still accepts any value, and "-" alone is a value (stdin)', () => {
  assert.equal(parseCommandArgs(['--repo=--weird'], OPTIONS, []).values.repo, '--weird');
  assert.equal(parseCommandArgs(['--repo', '-'], OPTIONS, []).values.repo, '-');
});

test('did you mean: the closest word within a few edits, or a unique prefix, else nothing', () => {
  const words = ['backup', 'restore', 'snapshots', 'check', 'prune', 'ls', 'diff', 'stats'];
  assert.equal(closest('bakup', words), 'backup');
  assert.equal(closest('restroe', words), 'restore');
  assert.equal(closest('snap', words), 'snapshots');
  assert.equal(closest('shapshots', words), 'snapshots');
  assert.equal(closest('frobnicate', words), undefined);
  assert.equal(closest('x', words), undefined);
});
