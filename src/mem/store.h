// store.h — the personal memory store: users, API keys, conversations, memories, documents.
//
// One interface, two backends behind an opaque cg_store: SQLite (the embedded default: one file,
// WAL, foreign keys, busy timeout) and PostgreSQL via libpq. cg_store_open picks the backend from
// its first argument: a "postgres://" / "postgresql://" URL or a libpq "key=value" string (one
// containing "host=", "dbname=" or "port=") selects PostgreSQL; anything else is a SQLite path.
// Both backends share the schema, the SQL and every semantic below; the tests run against both.
//
// Every operation takes the owning user's id and is scoped by it: an id that exists but belongs
// to another user is CG_ERR_NOT_FOUND, exactly like an id that does not exist.
//
// Ownership: every string and record returned is owned by the caller and freed with the matching
// _free function; every pointer passed in is borrowed for the duration of the call only, except
// cg_store_opts.embed_user which is borrowed until cg_store_close.
//
// Thread-safety: a cg_store is one database connection and is NOT thread-safe. Open one store per
// thread (SQLite WAL lets several connections share one file; PostgreSQL gives each its own
// session). Distinct stores may be used concurrently.
//
// Errors: CG_ERR_INVALID (bad argument), CG_ERR_NOT_FOUND (no such record for this user),
// CG_ERR_IO (the database failed: read-only, full disk, connection lost — the transaction is rolled
// back, nothing acknowledged is lost), CG_ERR_FORMAT (a stored row is broken: the message names
// table, id and column), CG_ERR_STATE (e.g. writing memory from a temporary conversation, or an
// encrypted row without a key), CG_ERR_UNSUPPORTED (a database newer than this build).
#ifndef CG_MEM_STORE_H
#define CG_MEM_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"

typedef struct cg_store cg_store;

// The newest schema version this build writes (see docs/memory.md for the migration list).
#define CG_STORE_SCHEMA_VERSION 6

// An embedding function: writes n_embd floats for text[0..n) into out. Must be deterministic.
// `user` is cg_store_opts.embed_user. Called from the thread using the store.
typedef cg_status (*cg_embed_fn)(void *user, const char *text, size_t n, float *out, int n_embd,
                                 cg_err *err);

typedef struct cg_store_opts {
    // Optional embedding function (NULL: search is full text only). n_embd in 1..4096.
    cg_embed_fn embed;
    void *embed_user;  // borrowed until cg_store_close
    int n_embd;
    // Optional encryption at rest of message and memory text: path of a master key file
    // (32 raw bytes or 64 hex digits). NULL: text is stored in clear.
    const char *master_key_path;
    // Optional 32-byte key for hashing API keys (keyed BLAKE2b). NULL: a random key generated
    // on first open and kept in the database's meta table.
    const unsigned char *key_hash_key;
    bool read_only;      // SQLite: open read-only; PostgreSQL: default_transaction_read_only
    int target_version;  // 0 = newest; tests use 1 to build an old database and migrate it
    int busy_timeout_ms; // SQLite busy timeout; 0 = 5000
    // SQLite synchronous=NORMAL instead of FULL: a process crash still loses nothing, a power
    // cut may lose the last commits. For bulk imports and benchmarks. PostgreSQL: no effect.
    bool relaxed_durability;
    // Bytes of decoded vector pages (mem_vpack) this store keeps in process between searches,
    // least recently searched user evicted first: 0 = CG_STORE_VEC_CACHE_DEFAULT, negative = no
    // cache (every search reads the pages). Validated on every search against the generation
    // numbers the database keeps (schema v5), so writes by other handles or processes are seen.
    int64_t vec_cache_bytes;
} cg_store_opts;

#define CG_STORE_VEC_CACHE_DEFAULT ((int64_t)256 << 20)

// Opens (creating if needed, then migrating forward) the store at `url_or_path`. opts may be NULL.
// On success *out is owned by the caller; free with cg_store_close.
cg_status cg_store_open(const char *url_or_path, const cg_store_opts *opts, cg_store **out,
                        cg_err *err);
void cg_store_close(cg_store *s);  // accepts NULL

// "sqlite" or "postgres". Borrowed static string.
const char *cg_store_backend(const cg_store *s);
// The schema version of the open database.
int cg_store_schema_version(const cg_store *s);

// The default data directory: data_dir if not NULL/empty, else $CHINGU_HOME, else
// $HOME/.local/share/chingu. Writes a malloc'ed path to *out (caller frees). Creates nothing.
cg_status cg_store_default_dir(const char *data_dir, char **out, cg_err *err);
// The default SQLite file inside that directory ("<dir>/chingu.db"), creating the directory (0700).
cg_status cg_store_default_path(const char *data_dir, char **out, cg_err *err);

// ---- users ----------------------------------------------------------------------------------
// Names are 1..128 bytes of UTF-8 without control characters, unique per store.
cg_status cg_store_user_add(cg_store *s, const char *name, int64_t *out_id, cg_err *err);
cg_status cg_store_user_find(cg_store *s, const char *name, int64_t *out_id, cg_err *err);
// Deletes the user and everything of theirs in every table (keys, conversations, messages,
// memories and their index entries, documents, chunks, audit log).
cg_status cg_store_user_delete(cg_store *s, int64_t user_id, cg_err *err);

typedef struct cg_user { int64_t id; char *name; int64_t created_ms; } cg_user;
cg_status cg_store_user_list(cg_store *s, cg_user **out, size_t *n_out, cg_err *err);
void cg_user_list_free(cg_user *u, size_t n);

// ---- API keys -------------------------------------------------------------------------------
typedef enum cg_key_scope { CG_KEY_USER = 0, CG_KEY_ADMIN = 1 } cg_key_scope;
// "cg-" + 43 characters of unpadded base64url (32 random bytes) + NUL.
#define CG_KEY_STR_LEN 47
// Creates a key; the secret is written to out_key once and never stored (only its keyed hash).
cg_status cg_store_key_create(cg_store *s, int64_t user_id, cg_key_scope scope,
                              char out_key[CG_KEY_STR_LEN], int64_t *out_key_id, cg_err *err);
// Checks a presented key. CG_ERR_NOT_FOUND for unknown or revoked keys; on success records the
// last-used time and returns the owner and scope.
cg_status cg_store_key_verify(cg_store *s, const char *key, int64_t *out_user_id,
                              cg_key_scope *out_scope, cg_err *err);
cg_status cg_store_key_revoke(cg_store *s, int64_t user_id, int64_t key_id, cg_err *err);

// ---- conversations and messages -------------------------------------------------------------
// A temporary conversation keeps its messages but never writes memory (memory_add citing it is
// CG_ERR_STATE).
cg_status cg_store_conv_add(cg_store *s, int64_t user_id, const char *title, bool temporary,
                            int64_t *out_id, cg_err *err);
cg_status cg_store_conv_delete(cg_store *s, int64_t user_id, int64_t conv_id, cg_err *err);
// role: "system", "user", "assistant" or "tool".
cg_status cg_store_msg_add(cg_store *s, int64_t user_id, int64_t conv_id, const char *role,
                           const char *text, int n_tokens, int64_t *out_id, cg_err *err);

typedef struct cg_message {
    int64_t id, conv_id;
    char *role, *text;
    int n_tokens;
    int64_t created_ms;
} cg_message;
cg_status cg_store_msg_list(cg_store *s, int64_t user_id, int64_t conv_id, cg_message **out,
                            size_t *n_out, cg_err *err);
void cg_message_list_free(cg_message *m, size_t n);

// ---- memories -------------------------------------------------------------------------------
typedef enum cg_mem_kind {
    CG_MEM_PROFILE = 0, CG_MEM_PREFERENCE, CG_MEM_RELATIONSHIP, CG_MEM_EVENT, CG_MEM_TASK,
    CG_MEM_NOTE, CG_MEM_KIND_COUNT_
} cg_mem_kind;
typedef enum cg_mem_source {
    CG_SRC_MANUAL = 0, CG_SRC_MESSAGE, CG_SRC_DOCUMENT, CG_SRC_COUNT_
} cg_mem_source;
const char *cg_mem_kind_name(cg_mem_kind k);      // "profile", …; "?" when out of range
const char *cg_mem_source_name(cg_mem_source s);  // "manual", "message", "document"
// Parses a kind name; CG_ERR_INVALID names the value.
cg_status cg_mem_kind_parse(const char *name, cg_mem_kind *out, cg_err *err);

// Input for memory_add. Only text is required; zero values mean defaults.
typedef struct cg_mem_new {
    const char *text;          // UTF-8, 1..65536 bytes
    cg_mem_kind kind;          // default CG_MEM_PROFILE (0)
    cg_mem_source source;
    double importance;         // 0..1
    int64_t created_ms;        // 0 = now; also the default valid_from
    int64_t valid_from_ms;     // 0 = created_ms
    int64_t due_ms;            // tasks: due time; 0 = none
    int64_t conv_id;           // source conversation, 0 = none
    int64_t supersedes;        // id of an earlier memory this one replaces, 0 = none
    const char *client_id;     // caller's id (import), NULL = none; unique per user
} cg_mem_new;

typedef struct cg_memory {
    int64_t id, user_id;
    cg_mem_kind kind;
    cg_mem_source source;
    char *text;                // owned
    char *client_id;           // owned, NULL when none
    double importance;
    int64_t created_ms, updated_ms, valid_from_ms;
    int64_t valid_to_ms;       // 0 = still valid
    int64_t superseded_by;     // 0 = current
    int64_t due_ms, conv_id;
    double score;              // search only: fused score (higher is better)
} cg_memory;

// Adds a memory. With `supersedes`, the old memory's valid_to becomes the new one's valid_from
// and its superseded_by the new id, in one transaction, and both changes are audited.
cg_status cg_store_memory_add(cg_store *s, int64_t user_id, const cg_mem_new *m, int64_t *out_id,
                              cg_err *err);
cg_status cg_store_memory_get(cg_store *s, int64_t user_id, int64_t id, cg_memory *out,
                              cg_err *err);
// The id of the user's memory with this client id (import's "supersedes"); CG_ERR_NOT_FOUND.
cg_status cg_store_memory_find_client(cg_store *s, int64_t user_id, const char *client_id,
                                      int64_t *out_id, cg_err *err);
// Replaces the text (and importance when >= 0); updated_ms becomes now; audited.
cg_status cg_store_memory_edit(cg_store *s, int64_t user_id, int64_t id, const char *text,
                               double importance, cg_err *err);
cg_status cg_store_memory_delete(cg_store *s, int64_t user_id, int64_t id, cg_err *err);
// Deletes every memory of the user ("forget all"); *n_deleted may be NULL.
cg_status cg_store_memory_forget_all(cg_store *s, int64_t user_id, int64_t *n_deleted,
                                     cg_err *err);
// Lists memories newest first; current_only skips superseded / expired ones.
cg_status cg_store_memory_list(cg_store *s, int64_t user_id, bool current_only, cg_memory **out,
                               size_t *n_out, cg_err *err);
// Current task memories with a due time <= before_ms, earliest first (reminders).
cg_status cg_store_memory_due(cg_store *s, int64_t user_id, int64_t before_ms, cg_memory **out,
                              size_t *n_out, cg_err *err);
void cg_memory_clear(cg_memory *m);               // frees the strings of one record
void cg_memory_list_free(cg_memory *m, size_t n);

// Hybrid search: BM25 over the CJK-bigram/word index fused with cosine similarity of embeddings
// (when an embed function is set) by reciprocal-rank fusion, then boosted by importance and
// recency. Results sorted by score, best first. BM25 ranks only the user's newest
// max_candidates (default 1,000) matches of the query (bounded time for common words).
typedef struct cg_search_opts {
    int k;                 // results wanted, default 10, max 1000
    bool include_history;  // also superseded / expired memories
    double min_cosine;     // vector hits below this are ignored; default 0.2 (when 0)
    int64_t now_ms;        // for the recency boost; 0 = now
    int max_candidates;    // BM25 ranks the user's newest this-many matches; 0 = 1000
    // Vector half: read every embedding blob of the user instead of the packed pages (same
    // result, linear cost). For tests and benchmarks (A/B).
    bool vec_scan;
} cg_search_opts;
cg_status cg_store_memory_search(cg_store *s, int64_t user_id, const char *query,
                                 const cg_search_opts *opts, cg_memory **out, size_t *n_out,
                                 cg_err *err);

// Recomputes the packed vector pages (mem_vpack, see docs/memory.md) of one user, or of every
// user when user_id is 0, from the memories' embedding blobs, in one transaction. The pack is
// derived data kept current by every write; this repairs it (e.g. after a CG_ERR_FORMAT naming
// a mem_vpack page) — migration to schema v4 runs it once. CG_ERR_STATE below schema v4.
cg_status cg_store_vec_rebuild(cg_store *s, int64_t user_id, cg_err *err);

// Counters of the vector page cache (cg_store_opts.vec_cache_bytes) since open, for tests and
// benchmarks. hits: searches answered from cached pages after validation; loads: searches that
// (re)read some of a user's pages; pages_read: pages decoded into the cache; evictions: users
// dropped to stay under the limit; bypass: searches that read the pages directly (no cache, a
// user larger than the limit, or a database below schema v5); reranked: candidates the packed
// stage handed to the exact re-rank over their blobs; rescored: cached entries the int8 pass
// let through to the half-precision score (both summed over searches).
typedef struct cg_vec_cache_stats {
    uint64_t hits, loads, pages_read, evictions, bypass, reranked, rescored;
    size_t bytes, limit, users;  // now held, the bound, users held
} cg_vec_cache_stats;
void cg_store_vec_cache_stats(const cg_store *s, cg_vec_cache_stats *out);

// The vector half of search on its own (tests, benchmarks): the ids of the user's memories
// ranked by reference cosine (cg_vec_cosine) with the query's embedding, best first (ties:
// lower id first), those >= min_cosine, at most max(5k, 50) — exactly the list search fuses.
// Uses opts k, min_cosine, include_history, vec_scan. *ids and *cos are malloc'ed (caller
// frees). CG_ERR_STATE without an embedding function.
cg_status cg_store_vec_ranked(cg_store *s, int64_t user_id, const char *query,
                              const cg_search_opts *opts, int64_t **ids, float **cos, size_t *n,
                              cg_err *err);

// ---- documents ------------------------------------------------------------------------------
// Stores a document and splits its text into chunks of at most chunk_bytes (default 2000) at
// UTF-8 boundaries, preferring whitespace. *out_n_chunks may be NULL.
cg_status cg_store_doc_add(cg_store *s, int64_t user_id, const char *title, const char *text,
                           size_t chunk_bytes, int64_t *out_id, int64_t *out_n_chunks,
                           cg_err *err);

// ---- audit and export -----------------------------------------------------------------------
// Number of audit rows for the user (memory add/edit/delete/supersede/forget_all).
cg_status cg_store_audit_count(cg_store *s, int64_t user_id, int64_t *out, cg_err *err);
// Appends everything the user has as one JSON object to out: user, keys (metadata, never
// hashes), conversations with messages, memories, documents with chunks, audit log.
cg_status cg_store_export_json(cg_store *s, int64_t user_id, cg_buf *out, cg_err *err);

// ---- test support ---------------------------------------------------------------------------
// Runs a statement (no parameters, no rows) on the underlying database. For tests and tools that
// need to break a row on purpose or inspect tables; never for user input.
cg_status cg_store_exec_raw(cg_store *s, const char *sql, cg_err *err);
// Runs a query returning one integer (e.g. a count). For tests.
cg_status cg_store_query_int(cg_store *s, const char *sql, int64_t *out, cg_err *err);

#endif
