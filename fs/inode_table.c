/* inode_table.c - content-addressed inodes in fixed-size paged records. */
#include "fs/inode_table.h"

#include "common/err.h"

#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_SHIFT  12
#define PAGE_RECS   (1u << PAGE_SHIFT)
#define MAX_PAGES   (1u << 16) /* 2^28 inodes */
#define MAX_INODES  ((uint64_t)MAX_PAGES * PAGE_RECS)
#define STRIPES	    64
#define HASH_MIN    4096
#define ARENA_CHUNK (64 * 1024)
/* Freed children arrays are given back to the system (malloc_trim) each
 * time this much was freed: they are the only memory of the table that is
 * freed while it runs, in pieces too small for malloc to unmap. */
#define TRIM_BYTES ((uint64_t)1 << 20)

struct child_ent {
	uint32_t ino;
	uint32_t name_off; /* into names: one length byte, then the name */
};

struct inode_children {
	atomic_uint refs;
	uint32_t count;
	size_t bytes;
	struct inode_table *t;
	struct child_ent ents[];
};

struct arena_chunk {
	struct arena_chunk *next;
	size_t used;
	uint8_t data[];
};

struct inode_table {
	/* Pages are allocated under `mu` and never move or shrink. */
	struct inode *_Atomic *pages;
	_Atomic uint64_t count; /* inodes handed out + 1 (ino 0 is unused) */
	_Atomic uint64_t bytes;
	_Atomic uint64_t populated;
	_Atomic uint64_t freed; /* bytes of children arrays freed since the last trim */

	pthread_mutex_t mu;
	/* protected by mu: the key hash, (hash32 << 32 | ino) per slot */
	uint64_t *slots;
	size_t nslots, used;
	struct arena_chunk *arena; /* protected by mu: symlink targets */

	pthread_mutex_t stripes[STRIPES]; /* guard inode.children */
};

static struct inode *rec_at(struct inode_table *t, uint64_t ino)
{
	struct inode *page =
	    atomic_load_explicit(&t->pages[ino >> PAGE_SHIFT], memory_order_acquire);

	return &page[ino & (PAGE_RECS - 1)];
}

static pthread_mutex_t *stripe_of(struct inode_table *t, uint64_t ino)
{
	return &t->stripes[ino % STRIPES];
}

static void bytes_add(struct inode_table *t, int64_t n)
{
	atomic_fetch_add_explicit(&t->bytes, (uint64_t)n, memory_order_relaxed);
}

static int page_ensure(struct inode_table *t, uint64_t ino)
{
	size_t p = ino >> PAGE_SHIFT;
	struct inode *page;

	if (atomic_load_explicit(&t->pages[p], memory_order_relaxed))
		return 0;
	page = calloc(PAGE_RECS, sizeof(*page));
	if (!page)
		return -ENOMEM;
	/* The page and its slot in the (lazily zero-filled) page directory. */
	bytes_add(t, PAGE_RECS * sizeof(*page) + sizeof(*t->pages));
	atomic_store_explicit(&t->pages[p], page, memory_order_release);
	return 0;
}

int inode_table_new(struct inode_table **out)
{
	struct inode_table *t = calloc(1, sizeof(*t));
	struct inode *root;

	if (!t)
		return -ENOMEM;
	/* 512 KiB of address space; a calloc this large is mapped zero-filled
	 * on demand, so only the part naming allocated pages is resident. */
	t->pages = calloc(MAX_PAGES, sizeof(*t->pages));
	t->nslots = HASH_MIN;
	t->slots = calloc(t->nslots, sizeof(*t->slots));
	if (!t->pages || !t->slots || page_ensure(t, INODE_ROOT)) {
		free(t->pages);
		free(t->slots);
		free(t);
		return -ENOMEM;
	}
	pthread_mutex_init(&t->mu, NULL);
	for (int i = 0; i < STRIPES; i++)
		pthread_mutex_init(&t->stripes[i], NULL);
	bytes_add(t, sizeof(*t) + t->nslots * sizeof(*t->slots));
	root = rec_at(t, INODE_ROOT);
	root->kind = 0;
	atomic_init(&root->size, 0);
	atomic_init(&t->count, INODE_ROOT + 1);
	*out = t;
	return 0;
}

static void children_free(struct inode_children *c)
{
	struct inode_table *t = c->t;
	uint64_t freed;

	atomic_fetch_sub_explicit(&t->bytes, c->bytes, memory_order_relaxed);
	freed = atomic_fetch_add_explicit(&t->freed, c->bytes, memory_order_relaxed) + c->bytes;
	free(c);
	if (freed >= TRIM_BYTES &&
	    atomic_compare_exchange_strong(&t->freed, &freed, 0)) /* one thread trims */
		malloc_trim(0);
}

void inode_table_free(struct inode_table *t)
{
	uint64_t n;

	if (!t)
		return;
	n = atomic_load(&t->count);
	for (uint64_t ino = INODE_ROOT; ino < n; ino++) {
		struct inode *r = rec_at(t, ino);

		if (r->children)
			inode_children_unref(r->children);
	}
	for (size_t p = 0; p < MAX_PAGES && atomic_load(&t->pages[p]); p++)
		free(atomic_load(&t->pages[p]));
	while (t->arena) {
		struct arena_chunk *c = t->arena;

		t->arena = c->next;
		free(c);
	}
	for (int i = 0; i < STRIPES; i++)
		pthread_mutex_destroy(&t->stripes[i]);
	pthread_mutex_destroy(&t->mu);
	free(t->slots);
	free(t->pages);
	free(t);
}

const struct inode *inode_table_get(struct inode_table *t, uint64_t ino)
{
	if (ino < INODE_ROOT || ino >= atomic_load_explicit(&t->count, memory_order_acquire))
		return NULL;
	return rec_at(t, ino);
}

/* --- the key hash --- */

static uint32_t mix32(uint32_t h)
{
	h ^= h >> 16;
	h *= 0x7feb352dU;
	h ^= h >> 15;
	h *= 0x846ca68bU;
	h ^= h >> 16;
	return h;
}

static uint32_t key_hash(const struct node *n)
{
	uint32_t h = 2166136261U;

	if (n->kind == NODE_SYMLINK) {
		for (size_t i = 0; i < n->target_len; i++)
			h = (h ^ n->target[i]) * 16777619U;
	} else {
		memcpy(&h, n->digest.bytes, sizeof(h));
	}
	return mix32(h ^ ((uint32_t)n->kind << 1 | (n->executable && n->kind == NODE_FILE)));
}

static bool key_eq(const struct inode *r, const struct node *n)
{
	if (r->kind != n->kind)
		return false;
	if (n->kind == NODE_SYMLINK)
		return r->key.target.len == n->target_len &&
		       !memcmp(r->key.target.bytes, n->target, n->target_len);
	if (n->kind == NODE_FILE && r->executable != n->executable)
		return false;
	return b3_digest_eq(&r->key.digest, &n->digest);
}

static void slot_put(uint64_t *slots, size_t nslots, uint64_t v)
{
	size_t i = (size_t)(v >> 32) & (nslots - 1);

	while (slots[i])
		i = (i + 1) & (nslots - 1);
	slots[i] = v;
}

static int hash_grow(struct inode_table *t)
{
	size_t n = t->nslots * 2;
	uint64_t *s = calloc(n, sizeof(*s));

	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < t->nslots; i++)
		if (t->slots[i])
			slot_put(s, n, t->slots[i]);
	bytes_add(t, (int64_t)((n - t->nslots) * sizeof(*s)));
	free(t->slots);
	t->slots = s;
	t->nslots = n;
	return 0;
}

/* Called with mu held. */
static int arena_copy(struct inode_table *t, const uint8_t *b, size_t len, const uint8_t **out)
{
	struct arena_chunk *c = t->arena;

	if (!c || ARENA_CHUNK - c->used < len) {
		c = malloc(sizeof(*c) + ARENA_CHUNK);
		if (!c)
			return -ENOMEM;
		c->used = 0;
		c->next = t->arena;
		t->arena = c;
		bytes_add(t, sizeof(*c) + ARENA_CHUNK);
	}
	memcpy(c->data + c->used, b, len);
	*out = c->data + c->used;
	c->used += len;
	return 0;
}

/* Called with mu held: writes the record, then publishes the number. */
static int rec_create(struct inode_table *t, const struct node *n, uint64_t *ino)
{
	uint64_t i = atomic_load_explicit(&t->count, memory_order_relaxed);
	struct inode *r;
	int rc;

	if (i >= MAX_INODES || i > UINT32_MAX)
		return sf_err(-EOVERFLOW, "too many inodes");
	rc = page_ensure(t, i);
	if (rc)
		return rc;
	r = rec_at(t, i);
	r->kind = (uint8_t)n->kind;
	r->executable = n->kind == NODE_FILE && n->executable;
	if (n->kind == NODE_SYMLINK) {
		rc = arena_copy(t, n->target, n->target_len, &r->key.target.bytes);
		if (rc)
			return rc;
		r->key.target.len = (uint32_t)n->target_len;
		atomic_init(&r->size, n->target_len);
	} else {
		r->key.digest = n->digest;
		atomic_init(&r->size, n->kind == NODE_FILE ? n->size : INODE_SIZE_UNKNOWN);
	}
	atomic_store_explicit(&t->count, i + 1, memory_order_release);
	*ino = i;
	return 0;
}

/* Called with mu held. */
static int intern_locked(struct inode_table *t, const struct node *n, uint64_t *ino)
{
	uint32_t h = key_hash(n);
	size_t i = h & (t->nslots - 1);
	int rc;

	for (; t->slots[i]; i = (i + 1) & (t->nslots - 1)) {
		uint64_t v = t->slots[i];

		if ((uint32_t)(v >> 32) == h && key_eq(rec_at(t, (uint32_t)v), n)) {
			*ino = (uint32_t)v;
			return 0;
		}
	}
	rc = rec_create(t, n, ino);
	if (rc)
		return rc;
	t->slots[i] = (uint64_t)h << 32 | *ino;
	if (++t->used * 10 > t->nslots * 7)
		return hash_grow(t);
	return 0;
}

int inode_table_intern(struct inode_table *t, const struct node *n, uint64_t *ino)
{
	int rc;

	pthread_mutex_lock(&t->mu);
	rc = intern_locked(t, n, ino);
	pthread_mutex_unlock(&t->mu);
	return rc;
}

/* --- children --- */

static const uint8_t *children_names(const struct inode_children *c)
{
	return (const uint8_t *)&c->ents[c->count];
}

void inode_children_unref(struct inode_children *c)
{
	if (c && atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
		children_free(c);
}

size_t inode_children_count(const struct inode_children *c)
{
	return c->count;
}

void inode_children_at(const struct inode_children *c, size_t i, const uint8_t **name, size_t *len,
		       uint64_t *ino)
{
	const uint8_t *p = children_names(c) + c->ents[i].name_off;

	*len = p[0];
	*name = p + 1;
	*ino = c->ents[i].ino;
}

int inode_children_find(const struct inode_children *c, const uint8_t *name, size_t len,
			size_t *index)
{
	size_t lo = 0, hi = c->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2, mlen;
		const uint8_t *mname;
		uint64_t ino;
		int cmp;

		inode_children_at(c, mid, &mname, &mlen, &ino);
		cmp = castore_name_cmp(mname, mlen, name, len);
		if (cmp == 0) {
			*index = mid;
			return 0;
		}
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -ENOENT;
}

int inode_table_children(struct inode_table *t, uint64_t ino, struct inode_children **out)
{
	struct inode *r;
	struct inode_children *c;

	if (!inode_table_get(t, ino))
		return -ENOENT;
	r = rec_at(t, ino);
	pthread_mutex_lock(stripe_of(t, ino));
	c = r->children;
	if (c)
		atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
	pthread_mutex_unlock(stripe_of(t, ino));
	if (!c)
		return -ENOENT;
	*out = c;
	return 0;
}

static int children_alloc(struct inode_table *t, const struct directory *d,
			  struct inode_children **out)
{
	size_t names = 0, bytes;
	struct inode_children *c;

	if (d->count > UINT32_MAX)
		return sf_err(-EOVERFLOW, "directory has too many entries");
	for (size_t i = 0; i < d->count; i++)
		names += 1 + d->nodes[i].name_len;
	bytes = sizeof(*c) + d->count * sizeof(c->ents[0]) + names;
	c = malloc(bytes);
	if (!c)
		return -ENOMEM;
	c->count = (uint32_t)d->count;
	c->bytes = bytes;
	c->t = t;
	atomic_init(&c->refs, 1);
	*out = c;
	return 0;
}

/* Interns every child under one hold of mu and fills the entries. */
static int children_fill(struct inode_table *t, const struct directory *d, struct inode_children *c)
{
	uint8_t *names = (uint8_t *)children_names(c);
	size_t off = 0;
	int rc = 0;

	pthread_mutex_lock(&t->mu);
	for (size_t i = 0; i < d->count && !rc; i++) {
		const struct node *n = &d->nodes[i];
		uint64_t ino;

		rc = intern_locked(t, n, &ino);
		c->ents[i].ino = (uint32_t)ino;
		c->ents[i].name_off = (uint32_t)off;
		names[off] = (uint8_t)n->name_len;
		memcpy(names + off + 1, n->name, n->name_len);
		off += 1 + n->name_len;
	}
	pthread_mutex_unlock(&t->mu);
	return rc;
}

/* Publishes `c` unless the directory already has children; either way
 * *out gets a reference to the published array. */
static void children_publish(struct inode_table *t, uint64_t ino, struct inode_children *c,
			     struct inode_children **out)
{
	struct inode *r = rec_at(t, ino);
	struct inode_children *cur;

	pthread_mutex_lock(stripe_of(t, ino));
	cur = r->children;
	if (!cur) {
		r->children = cur = c;
		c = NULL;
		atomic_fetch_add_explicit(&t->populated, 1, memory_order_relaxed);
		bytes_add(t, (int64_t)cur->bytes);
		atomic_store_explicit(&r->size, cur->count, memory_order_relaxed);
	}
	atomic_fetch_add_explicit(&cur->refs, 1, memory_order_relaxed);
	pthread_mutex_unlock(stripe_of(t, ino));
	if (c)
		free(c); /* never published, never counted */
	*out = cur;
}

int inode_table_populate(struct inode_table *t, uint64_t ino, const struct directory *d,
			 struct inode_children **out)
{
	const struct inode *r = inode_table_get(t, ino);
	struct inode_children *c = NULL;
	int rc;

	if (!r || r->kind != NODE_DIRECTORY)
		return sf_err(-EINVAL, "inode %llu is not a directory", (unsigned long long)ino);
	rc = children_alloc(t, d, &c);
	if (rc)
		return rc;
	rc = children_fill(t, d, c);
	if (rc) {
		free(c);
		return rc;
	}
	children_publish(t, ino, c, out);
	return 0;
}

/* --- lookup counts --- */

void inode_table_ref(struct inode_table *t, uint64_t ino, uint64_t n)
{
	if (inode_table_get(t, ino))
		atomic_fetch_add_explicit(&rec_at(t, ino)->nlookup, n, memory_order_relaxed);
}

/* Unless `always`, only while the kernel holds no reference. */
static void children_drop(struct inode_table *t, uint64_t ino, bool always)
{
	struct inode *r = rec_at(t, ino);
	struct inode_children *c;

	pthread_mutex_lock(stripe_of(t, ino));
	c = r->children;
	/* A lookup may have raced us and taken a new reference. */
	if (!always && atomic_load_explicit(&r->nlookup, memory_order_relaxed) != 0)
		c = NULL;
	if (c)
		r->children = NULL;
	pthread_mutex_unlock(stripe_of(t, ino));
	if (c) {
		atomic_fetch_sub_explicit(&t->populated, 1, memory_order_relaxed);
		inode_children_unref(c);
	}
}

void inode_table_forget(struct inode_table *t, uint64_t ino, uint64_t n)
{
	struct inode *r;
	uint64_t cur, next;

	if (ino == INODE_ROOT || !inode_table_get(t, ino))
		return;
	r = rec_at(t, ino);
	cur = atomic_load_explicit(&r->nlookup, memory_order_relaxed);
	do {
		next = cur > n ? cur - n : 0;
	} while (!atomic_compare_exchange_weak(&r->nlookup, &cur, next));
	if (next == 0 && r->kind == NODE_DIRECTORY)
		children_drop(t, ino, false);
	if (next == 0 && r->kind == NODE_FILE)
		atomic_store_explicit(&r->pushed, false, memory_order_relaxed);
}

void inode_table_release_children(struct inode_table *t, uint64_t ino)
{
	const struct inode *r = inode_table_get(t, ino);

	if (r && ino != INODE_ROOT && r->kind == NODE_DIRECTORY)
		children_drop(t, ino, true);
}

bool inode_table_mark_pushed(struct inode_table *t, uint64_t ino)
{
	if (ino == INODE_ROOT || !inode_table_get(t, ino))
		return false;
	return !atomic_exchange_explicit(&rec_at(t, ino)->pushed, true, memory_order_relaxed);
}

void inode_table_stats(struct inode_table *t, struct inode_table_stats *out)
{
	out->inodes = atomic_load(&t->count) - 1;
	out->bytes = atomic_load(&t->bytes);
	out->populated = atomic_load(&t->populated);
}
