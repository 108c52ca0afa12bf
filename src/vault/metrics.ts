/**
 * Prometheus metrics of one vault instance, on its own registry (several vaults may run
 * in one process in tests). Names are stable; docs/OPERATIONS.md explains them.
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { VaultEvents } from './vault-service.js';

/** The vault's metrics and the event hooks that feed them. */
export interface VaultMetrics {
  readonly registry: Registry;
  readonly events: VaultEvents;
  /** Records one finished HTTP request. */
  observeRequest(route: string, method: string, status: number, seconds: number): void;
}

/** Creates a registry with the vault's counters, histograms and process metrics. */
export function createVaultMetrics(): VaultMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'backvault_vault_' });
  const c = (name: string, help: string, labelNames: string[] = []) =>
    new Counter({ name, help, labelNames, registers: [registry] });
  const started = c('backvault_vault_logins_started_total', 'Login starts counted as guesses');
  const succeeded = c(
    'backvault_vault_logins_succeeded_total',
    'Login finishes that released the envelope',
  );
  const failed = c('backvault_vault_logins_failed_total', 'Login steps refused, by reason', [
    'reason',
  ]);
  const lockouts = c('backvault_vault_lockouts_total', 'Records destroyed after the attempt limit');
  const registrations = c('backvault_vault_registrations_total', 'Registrations, by kind', [
    'kind',
  ]);
  const latency = new Histogram({
    name: 'backvault_vault_request_duration_seconds',
    help: 'HTTP request latency by route, method and status',
    labelNames: ['route', 'method', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  return {
    registry,
    events: {
      loginStarted: () => started.inc(),
      loginSucceeded: () => succeeded.inc(),
      loginFailed: (reason) => failed.inc({ reason }),
      lockout: () => lockouts.inc(),
      registered: (replaced) => registrations.inc({ kind: replaced ? 'replace' : 'create' }),
    },
    observeRequest(route, method, status, seconds) {
      latency.observe({ route, method, status: String(status) }, seconds);
    },
  };
}
