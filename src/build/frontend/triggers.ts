/**
 * ONBUILD triggers of a base image (its config's OnBuild list) as the instructions that run
 * first in a stage built FROM it, all reported at the stage's FROM line. COPY --from in a
 * trigger is not resolved (no `fromResolved`): it names a stage or image of the build that uses
 * the base, which the executor resolves with resolveFrom.
 */
import { parseTrigger } from './instructions';
import type { Instruction, Loc } from './types';

export function triggerInstructions(triggers: readonly string[], loc: Loc): Instruction[] {
  return triggers.map((t) => parseTrigger(t, loc));
}
