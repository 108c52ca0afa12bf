/**
 * How long a bandwidth limiter held requests back, measured from outside it: the time during
 * which at least one request had reached the limiter (`enter`) and not yet passed it to the
 * store (`leave`).
 *
 * Why: the limiter's lower bound ("the limit, not something else, sets the pace") was checked
 * on wall time, which a starved machine stretches (load 12–16 on 2 cores: 1.33 MiB/s measured
 * against a 1.6 floor) although the limiter did nothing wrong — it simply had no request to
 * hold while the disk or the CPU was slow. The limiter schedules bytes back to back on a
 * virtual clock (throttle.ts), so while it holds anything it pays out exactly its rate:
 * `bytes / held` is the rate whatever the machine does, except that the last wake of each
 * busy period may fire late (a timer on a loaded machine). A limiter that holds too long
 * (paying twice, a wrong unit) raises `held` by the same factor: measured with slow puts
 * (half of them 1.5 s late), 1.33 MiB/s on the wall and 2.00 while held; with a 20 % lower
 * rate, 1.64 both ways.
 */
export class HeldClock {
  private readonly edges: { at: number; d: 1 | -1 }[] = [];

  /** A request reached the limiter (or the gate just before it). */
  enter(at: number = performance.now()): void {
    this.edges.push({ at, d: 1 });
  }

  /** A request passed the limiter (the store was called). */
  leave(at: number = performance.now()): void {
    this.edges.push({ at, d: -1 });
  }

  /**
   * `heldMs`: the measure of the union of the waits; `periods`: the busy periods longer than
   * 1 ms (each may end with one late timer).
   */
  result(): { heldMs: number; periods: number } {
    const edges = [...this.edges].sort((a, b) => a.at - b.at || b.d - a.d);
    let waiting = 0;
    let since = 0;
    let heldMs = 0;
    let periods = 0;
    for (const e of edges) {
      if (e.d === 1 && waiting++ === 0) since = e.at;
      if (e.d === -1 && --waiting < 0) throw new Error('a request reached the store unheld');
      if (e.d === -1 && waiting === 0) {
        heldMs += e.at - since;
        if (e.at - since > 1) periods++;
      }
    }
    if (waiting !== 0) throw new Error(`${waiting} requests never passed the limiter`);
    return { heldMs, periods };
  }
}
