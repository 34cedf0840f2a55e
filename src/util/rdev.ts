/** Linux's dev_t encoding (glibc's gnu_dev_major/minor): major and minor of a device number. */
export function splitDev(rdev: bigint | number): { major: number; minor: number } {
  const d = BigInt(rdev);
  return {
    major: Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn)),
    minor: Number((d & 0xffn) | ((d >> 12n) & ~0xffn)),
  };
}
