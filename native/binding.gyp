{
  "targets": [
    {
      "target_name": "kiln_native",
      "sources": ["src/kiln_native.c", "src/sha256.c", "src/seqpacket.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
