/**
 * ONBUILD triggers of a base image (its config's OnBuild list) as the instructions that run
 * first in a stage built FROM it, all reported at the stage's FROM line. A trigger's
 * `COPY --from` / `RUN --mount from=` names a stage or image of the build that uses the base:
 * it is resolved here against that build's plan (global ARGs and platform ARGs in scope, as
 * for the stage's own --from values).
 */
import { parseTrigger } from './instructions';
import { resolveFromInPlan } from './stages';
import type { BuildPlan, Instruction, Loc, RunMount } from './types';

export function triggerInstructions(triggers: readonly string[], loc: Loc, plan: BuildPlan, current: number, vars: Readonly<Record<string, string>>): Instruction[] {
  const at = `${loc.file}:${loc.line}`;
  return triggers.map((t): Instruction => {
    const ins = parseTrigger(t, loc);
    if ((ins.kind === 'COPY' || ins.kind === 'ADD') && ins.from !== undefined) {
      return { ...ins, fromResolved: resolveFromInPlan(plan, ins.from, current, vars, `${at}: ONBUILD ${ins.kind}`) };
    }
    if (ins.kind === 'RUN') {
      const mounts = ins.mounts.map((m): RunMount =>
        (m.type === 'bind' || m.type === 'cache') && m.from !== undefined ? { ...m, fromResolved: resolveFromInPlan(plan, m.from, current, vars, `${at}: ONBUILD RUN`) } : m,
      );
      return { ...ins, mounts };
    }
    return ins;
  });
}
