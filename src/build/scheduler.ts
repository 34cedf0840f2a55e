/**
 * A small DAG solver in the spirit of BuildKit's: the build is a graph of content-addressed
 * vertices, each an async op over its inputs' results. `solve()` runs every vertex the targets
 * need exactly once per digest, as soon as its inputs are done, at most `jobs` at a time, and
 * stops the whole graph on the first failure. Nothing here knows about containers; ops are
 * opaque functions.
 */
import { KilnError } from '../errors';

/** What an op gets besides its inputs' results. */
export interface OpContext {
  /** aborted when the solve fails elsewhere or is cancelled; ops should stop promptly */
  signal: AbortSignal;
}

/**
 * One node of the graph. Vertices with the same `digest` are the same work: the first vertex
 * object met for a digest (targets first, then depth-first through `inputs`) is the one whose
 * `op` and `inputs` are used, and its result is shared by everyone that reaches the digest.
 */
export interface Vertex<R> {
  digest: string;
  inputs: readonly Vertex<R>[];
  /** `inputResults[i]` is the result of `inputs[i]` (repeated inputs repeat their result) */
  op: (inputResults: R[], ctx: OpContext) => Promise<R>;
  /** for messages; defaults to the digest */
  name?: string;
}

export type SolveEvent<R> =
  | { type: 'start'; vertex: Vertex<R> }
  | { type: 'done'; vertex: Vertex<R>; result: R; ms: number }
  /** an op failed; also sent for ops that fail after the solve was already stopping */
  | { type: 'error'; vertex: Vertex<R>; error: unknown; ms: number }
  /** the digest's result was taken from `opts.cache`; its op and inputs are not run for it */
  | { type: 'cached'; vertex: Vertex<R>; result: R };

export interface SolveOptions<R> {
  /** most ops running at once: a positive integer, or Infinity (default) for all that are ready */
  jobs?: number;
  /** cancels the solve like a failure would */
  signal?: AbortSignal;
  /**
   * Called synchronously for each event. A listener that throws fails the solve with what it
   * threw (it is a bug in the caller, not something to hide).
   */
  onEvent?: (e: SolveEvent<R>) => void;
  /**
   * Results known before the solve, by digest: such vertices are not run and their inputs are
   * only run when something else needs them. Results of ops run by this solve are added.
   */
  cache?: Map<string, R>;
}

interface Node<R> {
  vertex: Vertex<R>;
  inputs: Node<R>[];
  dependents: Node<R>[];
  /** inputs not done yet */
  waiting: number;
  state: 'idle' | 'running' | 'done' | 'failed';
  result?: R;
}

/** The vertex's name for messages. */
export function vertexName<R>(v: Vertex<R>): string {
  return v.name ?? v.digest;
}

/**
 * Runs what `targets` need and resolves to their results, in order.
 *
 * On the first failure (an op rejecting, a listener throwing, or `opts.signal` aborting) no
 * further op starts, the signal in every running op's ctx is aborted, and once all running ops
 * have settled the promise rejects with that first error, unchanged (an op's own error object;
 * for cancellation the signal's reason when it is an Error other than the default
 * AbortError, else KilnError E_BUILD "build cancelled"). A cycle rejects with KilnError
 * E_INTERNAL before any op runs.
 */
export function solve<R>(targets: readonly Vertex<R>[], opts: SolveOptions<R> = {}): Promise<R[]> {
  const jobs = opts.jobs ?? Infinity;
  if (!(jobs === Infinity || (Number.isInteger(jobs) && jobs >= 1))) {
    return Promise.reject(new KilnError('E_INVALID_ARGUMENT', `jobs: want a positive integer, got ${jobs}`));
  }
  let nodes: Map<string, Node<R>>;
  try {
    nodes = buildGraph(targets);
  } catch (e) {
    return Promise.reject(e);
  }
  return new Promise<R[]>((resolve, reject) => {
    const cache = opts.cache;
    const abort = new AbortController();
    const ready: Node<R>[] = [];
    let running = 0;
    let remaining = 0;
    let failed = false;
    let firstError: unknown;

    const onExternalAbort = (): void => {
      const reason: unknown = opts.signal?.reason;
      // abort() without a reason gives a DOMException AbortError: that is a plain cancel
      const plain = !(reason instanceof Error) || (reason instanceof DOMException && reason.name === 'AbortError');
      fail(plain ? new KilnError('E_BUILD', 'build cancelled', { cause: reason }) : reason);
    };
    const finish = (): void => {
      opts.signal?.removeEventListener('abort', onExternalAbort);
      if (failed) reject(firstError);
      else resolve(targets.map((t) => nodes.get(t.digest)!.result as R));
    };
    function fail(e: unknown): void {
      if (failed) return;
      failed = true;
      firstError = e;
      abort.abort(e);
      if (running === 0) finish();
    }
    function emit(e: SolveEvent<R>): void {
      if (!opts.onEvent) return;
      try {
        opts.onEvent(e);
      } catch (err) {
        fail(err);
      }
    }

    // What the targets need, inputs before dependents; a cached digest's inputs are not needed
    // through it.
    const roots = targets.map((t) => nodes.get(t.digest)!);
    const needed = postOrder(roots, (x) => (cache?.has(x.vertex.digest) ? [] : x.inputs));
    for (const n of needed) {
      if (cache?.has(n.vertex.digest)) {
        n.state = 'done';
        n.result = cache.get(n.vertex.digest);
        continue;
      }
      remaining++;
      for (const i of new Set(n.inputs)) {
        if (i.state === 'done') continue;
        n.waiting++;
        i.dependents.push(n);
      }
      if (n.waiting === 0) ready.push(n);
    }

    if (opts.signal?.aborted) {
      onExternalAbort();
      return;
    }
    opts.signal?.addEventListener('abort', onExternalAbort, { once: true });
    for (const n of needed) if (n.state === 'done') emit({ type: 'cached', vertex: n.vertex, result: n.result as R });
    if (remaining === 0 && !failed) {
      finish();
      return;
    }
    pump();

    function pump(): void {
      while (!failed && running < jobs && ready.length > 0) start(ready.shift()!);
    }

    function start(n: Node<R>): void {
      n.state = 'running';
      running++;
      const t0 = performance.now();
      emit({ type: 'start', vertex: n.vertex });
      if (failed) {
        // the listener threw: the op never starts
        running--;
        n.state = 'failed';
        if (running === 0) finish();
        return;
      }
      const inputs = n.inputs.map((i) => i.result as R);
      let p: Promise<R>;
      try {
        p = Promise.resolve(n.vertex.op(inputs, { signal: abort.signal }));
      } catch (e) {
        p = Promise.reject(e);
      }
      p.then(
        (result) => {
          n.state = 'done';
          n.result = result;
          cache?.set(n.vertex.digest, result);
          emit({ type: 'done', vertex: n.vertex, result, ms: performance.now() - t0 });
          remaining--;
          for (const d of n.dependents) if (--d.waiting === 0) ready.push(d);
        },
        (error: unknown) => {
          n.state = 'failed';
          emit({ type: 'error', vertex: n.vertex, error, ms: performance.now() - t0 });
          fail(error);
        },
      ).finally(() => {
        running--;
        if (failed) {
          if (running === 0) finish();
        } else if (remaining === 0) {
          finish();
        } else {
          pump();
        }
      });
    }
  });
}

/** Nodes by digest, first vertex object met per digest wins; rejects cycles. */
function buildGraph<R>(targets: readonly Vertex<R>[]): Map<string, Node<R>> {
  const nodes = new Map<string, Node<R>>();
  // Targets first, then depth-first through inputs, iteratively so deep chains cannot overflow.
  const todo = [...targets].reverse();
  while (todo.length > 0) {
    const v = todo.pop()!;
    if (nodes.has(v.digest)) continue;
    nodes.set(v.digest, { vertex: v, inputs: [], dependents: [], waiting: 0, state: 'idle' });
    for (let i = v.inputs.length - 1; i >= 0; i--) todo.push(v.inputs[i]!);
  }
  for (const n of nodes.values()) n.inputs = n.vertex.inputs.map((i) => nodes.get(i.digest)!);
  checkAcyclic(nodes);
  return nodes;
}

/** Throws E_INTERNAL naming the vertices of the first cycle found. */
function checkAcyclic<R>(nodes: Map<string, Node<R>>): void {
  const color = new Map<Node<R>, 1 | 2>(); // 1 = on the current path, 2 = finished
  for (const root of nodes.values()) {
    if (color.has(root)) continue;
    const path: Node<R>[] = [root];
    const next: number[] = [0];
    color.set(root, 1);
    while (path.length > 0) {
      const n = path[path.length - 1]!;
      const i = next[next.length - 1]!;
      if (i >= n.inputs.length) {
        color.set(n, 2);
        path.pop();
        next.pop();
        continue;
      }
      next[next.length - 1] = i + 1;
      const m = n.inputs[i]!;
      const c = color.get(m);
      if (c === 1) {
        const cycle = path.slice(path.indexOf(m)).map((x) => vertexName(x.vertex));
        cycle.push(vertexName(m.vertex));
        throw new KilnError('E_INTERNAL', `build graph has a cycle: ${cycle.join(' -> ')}`);
      }
      if (c === undefined) {
        color.set(m, 1);
        path.push(m);
        next.push(0);
      }
    }
  }
}

/** Depth-first post-order (children first) from `roots`, each node once; iterative. */
function postOrder<T>(roots: readonly T[], children: (n: T) => readonly T[]): T[] {
  const out: T[] = [];
  const seen = new Set<T>();
  for (const root of roots) {
    if (seen.has(root)) continue;
    seen.add(root);
    const path: T[] = [root];
    const next: number[] = [0];
    while (path.length > 0) {
      const n = path[path.length - 1]!;
      const kids = children(n);
      const i = next[next.length - 1]!;
      if (i >= kids.length) {
        out.push(n);
        path.pop();
        next.pop();
        continue;
      }
      next[next.length - 1] = i + 1;
      const m = kids[i]!;
      if (!seen.has(m)) {
        seen.add(m);
        path.push(m);
        next.push(0);
      }
    }
  }
  return out;
}
