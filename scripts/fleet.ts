/**
 * `make fleet`: a whole vault fleet on this machine, for trying things out — three etcd
 * members and three vault nodes on 127.0.0.1, each node pointed at its own etcd member, all
 * holding the same fleet keys installed through the real key ceremony (`backvault vault
 * transport-key | keygen | import`). Nodes 1 and 2 use SoftHSM2 tokens when SoftHSM2 is
 * installed (Debian `softhsm2`), software HSMs otherwise. Prints the URLs and the fleet
 * public key; Ctrl-C stops every process (by PID) and removes every temporary file.
 *
 * The nodes talk to etcd over mutual TLS, and the members to each other, as across sites
 * (docs/OPERATIONS.md, "TLS to etcd"); the certificates come from a throwaway CA that
 * `openssl` makes in the temp dir.
 *
 * Demo only: the nodes use `--dev-auth` (one shared INSECURE token issuer, loopback only)
 * and everything lives in a temp dir. See docs/OPERATIONS.md for a real deployment.
 */
import { existsSync } from 'node:fs';
import { SOFTHSM_MODULE } from '../test/hsm/softhsm.js';
import { startFleet } from '../test/fleet/fleet.js';

async function main(): Promise<void> {
  const softhsm = existsSync(SOFTHSM_MODULE) && existsSync('/usr/bin/softhsm2-util');
  process.stderr.write(
    `starting 3 etcd members and 3 vault nodes (${softhsm ? 'PKCS#11 on SoftHSM2 for nodes 1-2' : 'software HSMs: SoftHSM2 not installed'})…\n`,
  );
  const fleet = await startFleet({
    hsms: softhsm ? ['pkcs11', 'pkcs11', 'software'] : ['software', 'software', 'software'],
    auth: 'dev',
    etcdDeadlineMs: 3000,
    logLevel: 'warn',
    tls: true,
  });
  const lines = [
    '',
    'backvault fleet is up (Ctrl-C stops everything)',
    '',
    `fleet public key (clients pin it): ${fleet.fleetKey}`,
    '',
    ...fleet.etcd.clientUrls.map(
      (u, i) => `etcd member ${i + 1}: ${u}  (pid ${fleet.etcd.pid(i) ?? '?'}, mutual TLS)`,
    ),
    ...fleet.nodes.map(
      (n) =>
        `vault node ${n.index + 1}:  ${n.url}  (pid ${n.pid() ?? '?'}, ${n.hsm} HSM, etcd member ${n.index + 1})`,
    ),
    '',
    'try:',
    `  curl -s ${fleet.nodes[0]?.url ?? ''}/v1/info`,
    `  curl -s ${fleet.nodes[2]?.metricsUrl() ?? ''} | grep backvault_   # metrics: loopback listener`,
    `  kill -9 ${fleet.etcd.pid(0) ?? '<etcd pid>'}   # one etcd member down: the fleet keeps serving`,
    ...(fleet.pki
      ? [
          `  etcdctl --endpoints ${fleet.etcd.clientUrls.join(',')} \\`,
          `    --cacert ${fleet.pki.caFile} --cert ${fleet.pki.clientCertFile} --key ${fleet.pki.clientKeyFile} \\`,
          '    endpoint status -w table',
        ]
      : []),
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    process.stderr.write('\nstopping the fleet…\n');
    fleet.stopAll().then(
      () => process.exit(0),
      (e: unknown) => {
        process.stderr.write(`cleanup failed: ${(e as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  // Keep the event loop alive until a signal.
  setInterval(() => undefined, 1 << 30);
}

main().catch((e: unknown) => {
  process.stderr.write(`make fleet failed: ${(e as Error).message}\n`);
  process.exit(1);
});
