/**
 * What a pull needs to check an image against containers-policy.json(5): the reference the
 * user asked for (signatures name it, not a mirror's or a [[registry]] location's rewrite), and
 * where policy.json and registries.d are (defaults: podman's paths).
 */
import type { DockerReference } from '../transports/docker';

export interface PullVerify {
  /** The logical reference the signatures must name (before mirrors and location rewrites). */
  identity: DockerReference;
  /** --signature-policy FILE */
  policyPath?: string;
  /** --registries.d DIR */
  registriesDir?: string;
}
