/**
 * Schema migrations, applied in order inside one transaction each; PRAGMA user_version holds
 * the number applied. Never edit a released migration: append a new one.
 *
 * Reference rules enforced by the store (not by SQL, so that errors can name what holds what):
 *   a blob is in use while an image lists it (image_blobs) or a live lease holds it;
 *   a layer is in use while an image lists it, a layer names it as parent, a container uses it,
 *   it is mounted (layer_mounts), or a live lease holds it.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE blobs (
    digest     TEXT PRIMARY KEY,
    size       INTEGER NOT NULL,
    media_type TEXT,
    created    INTEGER NOT NULL
  );
  CREATE TABLE layers (
    id                TEXT PRIMARY KEY,          -- chainID hex
    parent            TEXT REFERENCES layers(id),
    diff_id           TEXT NOT NULL,
    blob_digest       TEXT,                       -- the blob it was extracted from, if any
    compressed_size   INTEGER,
    uncompressed_size INTEGER NOT NULL,           -- tar stream size
    link              TEXT NOT NULL UNIQUE,       -- l/<link>
    created           INTEGER NOT NULL
  );
  -- One row per hold on a layer's mount (its mount reference count is the number of rows).
  -- holder: "<pid>-<starttime>" for a process-scoped hold (dropped when that process is dead),
  -- or a name (e.g. "cli") for a hold that outlives the command, as podman image mount does.
  CREATE TABLE layer_mounts (
    layer_id TEXT NOT NULL REFERENCES layers(id),
    holder   TEXT NOT NULL,
    target   TEXT NOT NULL,
    created  INTEGER NOT NULL
  );
  CREATE INDEX layer_mounts_layer ON layer_mounts(layer_id);
  CREATE INDEX layers_parent ON layers(parent);
  CREATE TABLE images (
    id                  TEXT PRIMARY KEY,         -- config digest hex
    manifest_digest     TEXT NOT NULL,
    manifest_media_type TEXT NOT NULL,
    config_digest       TEXT NOT NULL,
    top_layer           TEXT REFERENCES layers(id),
    size                INTEGER NOT NULL,
    created             INTEGER NOT NULL,         -- ms, from the config (or added time)
    added               INTEGER NOT NULL          -- ms, when stored
  );
  CREATE TABLE image_names (
    name     TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    seq      INTEGER NOT NULL
  );
  CREATE INDEX image_names_image ON image_names(image_id);
  CREATE TABLE image_layers (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    idx      INTEGER NOT NULL,
    layer_id TEXT NOT NULL REFERENCES layers(id),
    PRIMARY KEY (image_id, idx)
  );
  CREATE INDEX image_layers_layer ON image_layers(layer_id);
  CREATE TABLE image_blobs (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    digest   TEXT NOT NULL REFERENCES blobs(digest),
    PRIMARY KEY (image_id, digest)
  );
  CREATE INDEX image_blobs_digest ON image_blobs(digest);
  CREATE TABLE containers (
    id       TEXT PRIMARY KEY,
    name     TEXT UNIQUE,
    image_id TEXT NOT NULL REFERENCES images(id),
    layer_id TEXT REFERENCES layers(id),
    created  INTEGER NOT NULL,
    state    TEXT NOT NULL DEFAULT '{}'
  );
  CREATE INDEX containers_image ON containers(image_id);
  CREATE TABLE leases (
    id      TEXT PRIMARY KEY,
    owner   TEXT NOT NULL,                        -- "<pid>-<starttime>"
    created INTEGER NOT NULL
  );
  CREATE TABLE lease_refs (
    lease_id TEXT NOT NULL REFERENCES leases(id) ON DELETE CASCADE,
    kind     TEXT NOT NULL CHECK (kind IN ('blob', 'layer')),
    ref      TEXT NOT NULL,
    PRIMARY KEY (lease_id, kind, ref)
  );
  CREATE INDEX lease_refs_ref ON lease_refs(kind, ref);
  `,
  // 2: podman's NamesHistory — every name an image had, current ones first (JSON array)
  `ALTER TABLE images ADD COLUMN names_history TEXT NOT NULL DEFAULT '[]';`,
  // 3: every manifest an image arrived with (its RepoDigests), not only the first
  `CREATE TABLE image_digests (
     image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
     digest   TEXT NOT NULL,
     seq      INTEGER NOT NULL,
     PRIMARY KEY (image_id, digest)
   );
   INSERT INTO image_digests (image_id, digest, seq) SELECT id, manifest_digest, 0 FROM images;`,
  // 4: the build cache, a key → layer index (BuildKit's cache keys; see src/build/cache.ts)
  `CREATE TABLE build_cache (
     key         TEXT PRIMARY KEY,
     parent_key  TEXT NOT NULL,
     op          TEXT NOT NULL,
     inputs      TEXT NOT NULL,
     layer_id    TEXT NOT NULL REFERENCES layers(id),
     blob_digest TEXT NOT NULL REFERENCES blobs(digest),
     diff_id     TEXT NOT NULL,
     created_by  TEXT NOT NULL,
     created     INTEGER NOT NULL,
     last_used   INTEGER NOT NULL
   );
   CREATE INDEX build_cache_parent ON build_cache(parent_key);
   CREATE INDEX build_cache_layer ON build_cache(layer_id);
   CREATE INDEX build_cache_blob ON build_cache(blob_digest);`,
  // 5: layers whose dir is made on first use from their blob (a COPY staged on tmpfs; see LayerStore.commitDeferred)
  `ALTER TABLE layers ADD COLUMN extracted INTEGER NOT NULL DEFAULT 1;`,
  // 6: GC asks whether a deferred layer still needs a blob
  `CREATE INDEX IF NOT EXISTS layers_blob ON layers(blob_digest);`,
  // 7: manifest lists (podman manifest create/add): a name, and entries that reference stored
  // images' manifests by digest. image_id is deliberately not a foreign key: an image may be
  // removed while a list names it (as with podman); \`manifest push\` then fails naming it.
  `CREATE TABLE IF NOT EXISTS manifest_lists (
     id      TEXT PRIMARY KEY,                      -- random hex, stable while the list changes
     name    TEXT NOT NULL UNIQUE,                  -- normalised; never also an image name
     created INTEGER NOT NULL
   );
   CREATE TABLE IF NOT EXISTS manifest_list_entries (
     list_id    TEXT NOT NULL REFERENCES manifest_lists(id) ON DELETE CASCADE,
     idx        INTEGER NOT NULL,
     digest     TEXT NOT NULL,                      -- the image's manifest, exactly as stored
     media_type TEXT NOT NULL,
     size       INTEGER NOT NULL,
     image_id   TEXT NOT NULL,
     platform   TEXT NOT NULL,                      -- JSON {architecture, os, variant?}
     PRIMARY KEY (list_id, idx),
     UNIQUE (list_id, digest)
   );`,
  // 8: a pull looks layers up by diffID, to take a layer the store has instead of fetching it
  `CREATE INDEX IF NOT EXISTS layers_diff_id ON layers(diff_id);`,
  // 9: containers (kiln run/create): config = what they were created with (JSON, container/types.ts
  // ContainerConfig); state = what happened since (JSON ContainerState). Named volumes (podman's
  // local driver: <root>/volumes/<name>/_data) and which containers use them.
  `ALTER TABLE containers ADD COLUMN config TEXT NOT NULL DEFAULT '{}';
   CREATE TABLE volumes (
     name    TEXT PRIMARY KEY,
     driver  TEXT NOT NULL DEFAULT 'local',
     created INTEGER NOT NULL,
     labels  TEXT NOT NULL DEFAULT '{}',          -- JSON object
     options TEXT NOT NULL DEFAULT '{}',          -- JSON object
     filled  INTEGER NOT NULL DEFAULT 0           -- 1 once copied up from an image (or used)
   );
   CREATE TABLE container_volumes (
     container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
     volume       TEXT NOT NULL REFERENCES volumes(name),
     destination  TEXT NOT NULL,
     PRIMARY KEY (container_id, destination)
   );
   CREATE INDEX container_volumes_volume ON container_volumes(volume);`,
];
