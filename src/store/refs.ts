/**
 * The one rule for "something still uses this layer/blob", as SQL conditions over a column
 * expression. Garbage collection (collectTx), repair and check all use these, so a new kind of
 * reference (the build cache) is added in one place.
 */

/** True when the layer whose id is `col` is used by an image, a child layer, a container, a lease, a mount or the build cache. */
export function layerHeldSql(col: string): string {
  return `(EXISTS(SELECT 1 FROM image_layers WHERE layer_id = ${col}) OR EXISTS(SELECT 1 FROM layers c WHERE c.parent = ${col})
    OR EXISTS(SELECT 1 FROM containers WHERE layer_id = ${col}) OR EXISTS(SELECT 1 FROM lease_refs WHERE kind = 'layer' AND ref = ${col})
    OR EXISTS(SELECT 1 FROM layer_mounts WHERE layer_id = ${col}) OR EXISTS(SELECT 1 FROM build_cache WHERE layer_id = ${col}))`;
}

/** True when the blob whose digest is `col` is used by an image, a lease, the build cache or a layer not yet extracted from it. */
export function blobHeldSql(col: string): string {
  return `(EXISTS(SELECT 1 FROM image_blobs WHERE digest = ${col}) OR EXISTS(SELECT 1 FROM lease_refs WHERE kind = 'blob' AND ref = ${col})
    OR EXISTS(SELECT 1 FROM build_cache WHERE blob_digest = ${col})
    OR EXISTS(SELECT 1 FROM layers WHERE blob_digest = ${col} AND extracted = 0))`;
}
