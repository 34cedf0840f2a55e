/** The host's architecture in Go's (and so the OCI image spec's) naming. */
export function goArch(): string {
  return ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', ia32: '386' } as Record<string, string>)[process.arch] ?? process.arch;
}
