/**
 * The Containerfile front end: pure functions from text to a BuildPlan (no I/O). loadPlan is
 * the whole pipeline; the passes and helpers are exported for the executor (variable
 * expansion, ONBUILD triggers of base images, .containerignore matching).
 */
import { parseContainerfile } from './parse';
import { planBuild } from './stages';
import type { BuildPlan, PlanOptions } from './types';

export type * from './types';
export { parseContainerfile, parseHeredocWord, chompHeredoc, type ParsedFile, type RawInstruction, type RawFlag } from './parse';
export { toInstruction, parseFrom, parseTrigger, KEYWORDS, type FromParts } from './instructions';
export { planBuild, resolveFrom, resolveFromInPlan } from './stages';
export { expandWord, expandWords, expandHeredoc, type Env, type EscapeChar } from './expand';
export { IgnoreMatcher, parseIgnoreFile, ignoreFileCandidates } from './ignore';
export { triggerInstructions } from './triggers';

/** parse → instructions → plan. Throws KilnError E_CONTAINERFILE naming file:line. */
export function loadPlan(text: string, file: string, opts: PlanOptions): BuildPlan {
  return planBuild(parseContainerfile(text, file), file, opts);
}
