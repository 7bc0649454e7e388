/*
 * idset.c — the idset type: a compressed set of customer ids.
 *
 * Built on CRoaring (Debian's libroaring-dev): roaring bitmaps are the
 * standard compressed integer set (Lucene, Druid, ClickHouse,
 * pg_roaringbitmap use them), they pick per 2^16-id chunk the smallest of a
 * sorted array, a bitset or runs, and their portable serialisation is a
 * published, language-neutral format.  CRoaring holds 32-bit values; ids are
 * bigint, so a set is a sorted list of buckets keyed by the high 32 bits of
 * an id, each a 32-bit bitmap (see idset.h for the layout).
 *
 * Reads that need one answer (cardinality, membership, min, max, text
 * output, the sizes of an intersection, union or difference) work on the
 * serialised bytes without building bitmaps; set algebra deserialises,
 * computes with CRoaring in the left operand's bitmaps and serialises again.
 * Binary input is untrusted: every byte of every bitmap is checked here
 * before CRoaring sees it, then the bitmaps are rebuilt by CRoaring so that
 * only sets CRoaring wrote are ever stored.
 */
#include "postgres.h"

#include <limits.h>

#include "access/detoast.h"
#include "access/heaptoast.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "port/pg_bitutils.h"
#include "port/pg_bswap.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "ecrm.h"
#include "idset.h"

/* Constants of the portable roaring format (RoaringFormatSpec) */
#define SERIAL_COOKIE_NO_RUN	12346
#define SERIAL_COOKIE			12347
#define NO_OFFSET_THRESHOLD		4
#define ARRAY_MAX_CARD			4096
#define BITSET_BYTES			8192

/* ----------------------------------------------------------------
 * Little-endian helpers: the on-disk and wire format is little-endian.
 * ---------------------------------------------------------------- */
static inline uint16
GetU16(const uint8 *p)
{
	return (uint16) (p[0] | (p[1] << 8));
}

static inline uint32
GetU32(const uint8 *p)
{
	return (uint32) p[0] | ((uint32) p[1] << 8) | ((uint32) p[2] << 16) | ((uint32) p[3] << 24);
}

static inline uint64
GetU64(const uint8 *p)
{
	return (uint64) GetU32(p) | ((uint64) GetU32(p + 4) << 32);
}

static inline void
PutU32(uint8 *p, uint32 v)
{
	p[0] = v & 0xFF;
	p[1] = (v >> 8) & 0xFF;
	p[2] = (v >> 16) & 0xFF;
	p[3] = (v >> 24) & 0xFF;
}

static inline void
PutU64(uint8 *p, uint64 v)
{
	PutU32(p, (uint32) v);
	PutU32(p + 4, (uint32) (v >> 32));
}

static inline int64
MakeId(uint32 high, uint32 low)
{
	return (int64) (((uint64) high << 32) | low);
}

/* Every id must be a non-negative bigint. */
static inline void
CheckId(int64 id)
{
	if (id < 0)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("id " INT64_FORMAT " is out of range for type idset", id),
				 errdetail("Ids lie between 0 and " INT64_FORMAT ".", PG_INT64_MAX)));
}

static void
ReportCorrupt(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("corrupted idset value"),
			 errdetail("%s", what)));
}

static void
ReportOutOfMemory(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_OUT_OF_MEMORY),
			 errmsg("out of memory"),
			 errdetail("The roaring bitmap library could not allocate memory.")));
}

/* ----------------------------------------------------------------
 * In-memory sets and their lifetime
 * ---------------------------------------------------------------- */

/* Reset callback: free the malloc'd bitmaps when the owning context goes. */
static void
IdSetFreeCallback(void *arg)
{
	IdSet	   *set = (IdSet *) arg;
	int			i;

	for (i = 0; i < set->nbuckets; i++)
		roaring_bitmap_free(set->bitmaps[i]);
	set->nbuckets = 0;
}

/* An empty set in CurrentMemoryContext; its bitmaps die with the context. */
IdSet *
IdSetCreate(void)
{
	IdSet	   *set = palloc0(sizeof(IdSet));

	set->capacity = 4;
	set->highs = palloc(sizeof(uint32) * set->capacity);
	set->bitmaps = palloc(sizeof(roaring_bitmap_t *) * set->capacity);
	set->cb.func = IdSetFreeCallback;
	set->cb.arg = set;
	MemoryContextRegisterResetCallback(GetMemoryChunkContext(set), &set->cb);
	return set;
}

/* Free the bitmaps now (the callback then has nothing left to do). */
void
IdSetFree(IdSet *set)
{
	IdSetFreeCallback(set);
}

/* Estimated malloc'd bytes of one bitmap (see IDSET_MAX_MEMORY). */
static Size
BitmapMemory(const roaring_bitmap_t *bm)
{
	return roaring_bitmap_portable_size_in_bytes(bm) +
		(Size) IDSET_CONTAINER_BYTES * bm->high_low_container.allocation_size;
}

/* Estimated malloc'd bytes of a set's bitmaps. */
Size
IdSetMemory(const IdSet *set)
{
	Size		n = 0;
	int			i;

	for (i = 0; i < set->nbuckets; i++)
		n += BitmapMemory(set->bitmaps[i]);
	return n;
}

static void
ReportTooLarge(Size bytes)
{
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("idset is too large to build"),
			 errdetail("It would take about %zu MB of memory; ecrm.idset_max_memory allows %zu MB.",
					   (bytes + (1 << 20) - 1) >> 20, IDSET_MAX_MEMORY >> 20),
			 errhint("Split the ids into several sets (for example by ranges of ids), or raise ecrm.idset_max_memory.")));
}

/*
 * Measure the set now; fail when it is over the bound.  The next check comes
 * when the bytes that may have been added since reach the headroom left, or,
 * near the bound, a third of the set: measuring walks every container, so
 * its cost stays a fraction of the additions, and the set overshoots the
 * bound by at most about a third of itself.
 */
static void
IdSetCheckMemory(IdSet *set)
{
	Size		bytes = IdSetMemory(set);

	set->measured = bytes;
	set->unchecked = 0;
	if (bytes > IDSET_MAX_MEMORY)
		ReportTooLarge(bytes);
	set->next_check = Max(Max(IDSET_MAX_MEMORY - bytes, bytes / 3), (Size) 65536);
}

/* The set grew by at most bytes; check its size now and then. */
static inline void
IdSetGrew(IdSet *set, Size bytes)
{
	set->unchecked += bytes;
	if (set->unchecked >= set->next_check)
		IdSetCheckMemory(set);
}

static int
FindBucket(const IdSet *set, uint32 high)
{
	int			lo = 0,
				hi = set->nbuckets - 1;

	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (set->highs[mid] == high)
			return mid;
		if (set->highs[mid] < high)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -(lo + 1);
}

/* Insert a bitmap (owned by the set from now on) at position pos. */
static void
InsertBucket(IdSet *set, int pos, uint32 high, roaring_bitmap_t *bm)
{
	if (bm == NULL)
		ReportOutOfMemory();
	if (set->nbuckets == set->capacity)
	{
		int			newcap;

		/* keep the bitmap owned while we may throw */
		if (set->capacity >= (int) (MaxAllocSize / sizeof(roaring_bitmap_t *) / 2))
		{
			roaring_bitmap_free(bm);
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("idset has too many distinct high 32-bit id prefixes")));
		}
		newcap = set->capacity * 2;
		PG_TRY();
		{
			set->highs = repalloc(set->highs, sizeof(uint32) * newcap);
			set->bitmaps = repalloc(set->bitmaps, sizeof(roaring_bitmap_t *) * newcap);
		}
		PG_CATCH();
		{
			roaring_bitmap_free(bm);
			PG_RE_THROW();
		}
		PG_END_TRY();
		set->capacity = newcap;
	}
	memmove(set->highs + pos + 1, set->highs + pos, sizeof(uint32) * (set->nbuckets - pos));
	memmove(set->bitmaps + pos + 1, set->bitmaps + pos, sizeof(roaring_bitmap_t *) * (set->nbuckets - pos));
	set->highs[pos] = high;
	set->bitmaps[pos] = bm;
	set->nbuckets++;
	IdSetGrew(set, BitmapMemory(bm));
}

/* Append a bitmap whose high is above every bucket's (ownership passes). */
static void
AppendBucket(IdSet *set, uint32 high, roaring_bitmap_t *bm)
{
	if (bm != NULL && roaring_bitmap_is_empty(bm))
	{
		roaring_bitmap_free(bm);
		return;
	}
	InsertBucket(set, set->nbuckets, high, bm);
}

static void
RemoveBucket(IdSet *set, int pos)
{
	roaring_bitmap_free(set->bitmaps[pos]);
	memmove(set->highs + pos, set->highs + pos + 1, sizeof(uint32) * (set->nbuckets - pos - 1));
	memmove(set->bitmaps + pos, set->bitmaps + pos + 1, sizeof(roaring_bitmap_t *) * (set->nbuckets - pos - 1));
	set->nbuckets--;
}

static roaring_bitmap_t *
GetBucket(IdSet *set, uint32 high)
{
	int			pos;

	/* ids usually arrive in one bucket: try the last one first */
	if (set->nbuckets > 0 && set->highs[set->nbuckets - 1] == high)
		return set->bitmaps[set->nbuckets - 1];
	pos = FindBucket(set, high);
	if (pos >= 0)
		return set->bitmaps[pos];
	pos = -pos - 1;
	InsertBucket(set, pos, high, roaring_bitmap_create());
	return set->bitmaps[pos];
}

void
IdSetAdd(IdSet *set, int64 id)
{
	CheckId(id);
	roaring_bitmap_add(GetBucket(set, (uint32) ((uint64) id >> 32)), (uint32) id);
	IdSetGrew(set, IDSET_ID_BYTES);
}

/* Add many ids; runs of ids with the same high 32 bits go in one call. */
void
IdSetAddMany(IdSet *set, const int64 *ids, int n)
{
	uint32		buf[1024];
	int			i = 0;

	while (i < n)
	{
		uint32		high;
		int			m = 0;
		roaring_bitmap_t *bm;

		CheckId(ids[i]);
		high = (uint32) ((uint64) ids[i] >> 32);
		while (i < n && m < (int) lengthof(buf) && ids[i] >= 0 && (uint32) ((uint64) ids[i] >> 32) == high)
			buf[m++] = (uint32) ids[i++];
		bm = GetBucket(set, high);
		roaring_bitmap_add_many(bm, m, buf);
		IdSetGrew(set, (Size) IDSET_ID_BYTES * m);
	}
}

/* How many 2^16-id chunks the range lo..hi touches. */
static inline uint64
RangeChunks(int64 lo, int64 hi)
{
	return ((uint64) hi >> 16) - ((uint64) lo >> 16) + 1;
}

/*
 * Add the ids lo..hi (inclusive, lo <= hi, both valid).  A range is cheap to
 * write and dear to hold (one container per chunk), so its size is checked
 * before anything is built.
 */
static void
IdSetAddRange(IdSet *set, int64 lo, int64 hi)
{
	uint64		h;

	if (RangeChunks(lo, hi) > IDSET_MAX_CHUNKS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("range " INT64_FORMAT "-" INT64_FORMAT " covers too many ids", lo, hi),
				 errdetail("It touches " UINT64_FORMAT " blocks of 65536 ids; with ecrm.idset_max_memory at %zu MB a range may touch " UINT64_FORMAT ".",
						   RangeChunks(lo, hi), IDSET_MAX_MEMORY >> 20, IDSET_MAX_CHUNKS),
				 errhint("Split the range into several sets, or raise ecrm.idset_max_memory.")));
	for (h = (uint64) lo >> 32; h <= ((uint64) hi >> 32); h++)
	{
		uint32		from = (h == ((uint64) lo >> 32)) ? (uint32) lo : 0;
		uint32		to = (h == ((uint64) hi >> 32)) ? (uint32) hi : UINT32_MAX;

		CHECK_FOR_INTERRUPTS();
		roaring_bitmap_add_range_closed(GetBucket(set, (uint32) h), from, to);
		IdSetGrew(set, (Size) IDSET_RANGE_CHUNK_BYTES * ((to >> 16) - (from >> 16) + 1));
	}
}

uint64
IdSetCardinality(const IdSet *set)
{
	uint64		n = 0;
	int			i;

	for (i = 0; i < set->nbuckets; i++)
		n += roaring_bitmap_get_cardinality(set->bitmaps[i]);
	return n;
}

/* ----------------------------------------------------------------
 * The portable roaring format, read straight from bytes
 * ---------------------------------------------------------------- */
typedef struct BlobView
{
	const uint8 *buf;
	Size		len;
	uint32		size;			/* number of containers */
	const uint8 *runflags;		/* bit i set: container i holds runs */
	const uint8 *desc;			/* size x {uint16 key, uint16 card - 1} */
	const uint8 *offsets;		/* size x uint32, or NULL */
	Size		data;			/* where the first container starts */
} BlobView;

#define BV_KEY(v, i)	GetU16((v)->desc + 4 * (i))
#define BV_CARD(v, i)	((uint32) GetU16((v)->desc + 4 * (i) + 2) + 1)
#define BV_ISRUN(v, i)	((v)->runflags != NULL && ((v)->runflags[(i) / 8] >> ((i) % 8)) & 1)

/* Parse the headers of a portable bitmap; false if they do not fit in len. */
static bool
BlobParse(const uint8 *buf, Size len, BlobView *v)
{
	uint32		cookie;
	Size		pos;

	memset(v, 0, sizeof(*v));
	v->buf = buf;
	v->len = len;
	if (len < 4)
		return false;
	cookie = GetU32(buf);
	pos = 4;
	if ((cookie & 0xFFFF) == SERIAL_COOKIE)
	{
		v->size = (cookie >> 16) + 1;
		v->runflags = buf + pos;
		pos += (v->size + 7) / 8;
	}
	else if (cookie == SERIAL_COOKIE_NO_RUN)
	{
		if (len < 8)
			return false;
		v->size = GetU32(buf + 4);
		pos = 8;
		if (v->size > 65536)
			return false;
	}
	else
		return false;
	if (pos + (Size) 4 * v->size > len)
		return false;
	v->desc = buf + pos;
	pos += 4 * v->size;
	if (v->runflags == NULL || v->size >= NO_OFFSET_THRESHOLD)
	{
		if (pos + (Size) 4 * v->size > len)
			return false;
		v->offsets = buf + pos;
		pos += 4 * v->size;
	}
	v->data = pos;
	return true;
}

/* Bytes taken by container i starting at pos; 0 when it would not fit. */
static Size
BlobContainerBytes(const BlobView *v, uint32 i, Size pos)
{
	Size		n;

	if (BV_ISRUN(v, i))
	{
		if (pos + 2 > v->len)
			return 0;
		n = 2 + (Size) 4 * GetU16(v->buf + pos);
	}
	else if (BV_CARD(v, i) > ARRAY_MAX_CARD)
		n = BITSET_BYTES;
	else
		n = (Size) 2 * BV_CARD(v, i);
	return (pos + n <= v->len) ? n : 0;
}

/* Start of container i (trusted bytes: offsets or a walk from the start). */
static Size
BlobContainerPos(const BlobView *v, uint32 i)
{
	Size		pos;
	uint32		j;

	if (v->offsets != NULL)
		return GetU32(v->offsets + 4 * i);
	pos = v->data;
	for (j = 0; j < i; j++)
	{
		Size		n = BlobContainerBytes(v, j, pos);

		if (n == 0)
			ReportCorrupt("A bitmap container runs past the end of its bucket.");
		pos += n;
	}
	return pos;
}

/*
 * Container-level reads.  c points at a container's bytes, all present:
 * runs {uint16 nruns, nruns x {uint16 start, uint16 length - 1}}, a bitset
 * of 8192 bytes, or an ascending array of card uint16.
 */

/* Does the container hold the low 16 bits x? */
static bool
ContainerHas(const uint8 *c, bool isrun, uint32 card, uint16 x)
{
	int			lo = 0,
				hi;

	if (isrun)
	{
		hi = GetU16(c) - 1;
		while (lo <= hi)
		{
			int			mid = lo + (hi - lo) / 2;
			uint32		start = GetU16(c + 2 + 4 * mid);
			uint32		end = start + GetU16(c + 4 + 4 * mid);

			if (x < start)
				hi = mid - 1;
			else if (x > end)
				lo = mid + 1;
			else
				return true;
		}
		return false;
	}
	if (card > ARRAY_MAX_CARD)
		return (c[x / 8] >> (x % 8)) & 1;
	hi = (int) card - 1;
	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;
		uint16		y = GetU16(c + 2 * mid);

		if (y == x)
			return true;
		if (y < x)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return false;
}

/* Smallest or largest low 16 bits of a non-empty container. */
static uint16
ContainerExtreme(const uint8 *c, bool isrun, uint32 card, bool largest)
{
	if (isrun)
	{
		uint16		nruns = GetU16(c);

		if (nruns == 0)
			ReportCorrupt("A run container has no runs.");
		return largest ? GetU16(c + 2 + 4 * (nruns - 1)) + GetU16(c + 4 + 4 * (nruns - 1))
			: GetU16(c + 2);
	}
	if (card > ARRAY_MAX_CARD)
	{
		int			b;

		if (largest)
		{
			for (b = BITSET_BYTES - 1; b >= 0; b--)
				if (c[b] != 0)
					return b * 8 + pg_leftmost_one_pos32(c[b]);
		}
		else
		{
			for (b = 0; b < BITSET_BYTES; b++)
				if (c[b] != 0)
					return b * 8 + pg_rightmost_one_pos32(c[b]);
		}
		ReportCorrupt("A bitset container is empty.");
	}
	return GetU16(c + 2 * (largest ? card - 1 : 0));
}

/*
 * Check every byte of an untrusted portable bitmap: headers, keys strictly
 * ascending, offsets where they must be, arrays strictly ascending, bitsets
 * and runs holding exactly the cardinality the header says, runs ascending,
 * disjoint and inside the chunk, and nothing left over.  Returns the
 * cardinality; reports what is wrong otherwise.
 */
static uint64
BlobValidate(const uint8 *buf, Size len)
{
	BlobView	v;
	Size		pos;
	uint32		i;
	uint64		total = 0;

#define BAD(...) ereport(ERROR, \
						 (errcode(ERRCODE_INVALID_BINARY_REPRESENTATION), \
						  errmsg("invalid binary idset"), errdetail(__VA_ARGS__)))

	if (!BlobParse(buf, len, &v))
		BAD("A bitmap header is malformed or truncated.");
	if (v.size == 0)
		BAD("A bucket holds an empty bitmap.");
	pos = v.data;
	for (i = 0; i < v.size; i++)
	{
		uint32		card = BV_CARD(&v, i);
		Size		n;
		const uint8 *c;

		if (i > 0 && BV_KEY(&v, i) <= BV_KEY(&v, i - 1))
			BAD("Bitmap container keys are not strictly ascending.");
		if (v.offsets != NULL && GetU32(v.offsets + 4 * i) != pos)
			BAD("Bitmap container %u is not where its offset says.", i);
		n = BlobContainerBytes(&v, i, pos);
		if (n == 0)
			BAD("Bitmap container %u runs past the end of the data.", i);
		c = buf + pos;
		if (BV_ISRUN(&v, i))
		{
			uint32		nruns = GetU16(c);
			uint32		sum = 0;
			int64		prev_end = -2;
			uint32		r;

			if (nruns == 0)
				BAD("Run container %u has no runs.", i);
			for (r = 0; r < nruns; r++)
			{
				uint32		start = GetU16(c + 2 + 4 * r);
				uint32		length = GetU16(c + 4 + 4 * r);

				if ((int64) start <= prev_end || start + length > 65535)
					BAD("Run container %u has overlapping, unsorted or out-of-range runs.", i);
				prev_end = start + length;
				sum += length + 1;
			}
			if (sum != card)
				BAD("Run container %u holds %u ids, its header says %u.", i, sum, card);
		}
		else if (card > ARRAY_MAX_CARD)
		{
			uint64		bits = pg_popcount((const char *) c, BITSET_BYTES);

			if (bits != card)
				BAD("Bitset container %u holds " UINT64_FORMAT " ids, its header says %u.", i, bits, card);
		}
		else
		{
			uint32		k;

			for (k = 1; k < card; k++)
				if (GetU16(c + 2 * k) <= GetU16(c + 2 * (k - 1)))
					BAD("Array container %u is not strictly ascending.", i);
		}
		total += card;
		pos += n;
	}
	if (pos != len)
		BAD("%zu bytes are left over after a bitmap.", (size_t) (len - pos));
#undef BAD
	return total;
}

/* ----------------------------------------------------------------
 * The varlena format
 * ---------------------------------------------------------------- */
typedef struct IdSetView
{
	const uint8 *base;			/* VARDATA */
	Size		len;
	uint32		nbuckets;
	uint64		cardinality;
	const uint8 *dir;
	Size		blobs;			/* offset of the first blob */
} IdSetView;

/* Check the header and directory of a stored value (blobs are checked when read). */
static void
ViewParse(const uint8 *base, Size len, IdSetView *v, bool untrusted)
{
	Size		need;
	uint32		i;
	Size		total = 0;

#define BAD(...) do { \
		if (untrusted) \
			ereport(ERROR, (errcode(ERRCODE_INVALID_BINARY_REPRESENTATION), \
							errmsg("invalid binary idset"), errdetail(__VA_ARGS__))); \
		else \
			ReportCorrupt("The idset header is inconsistent."); \
	} while (0)

	v->base = base;
	v->len = len;
	if (len < IDSET_HEADER_SIZE)
		BAD("The value is %zu bytes long, shorter than the %d-byte header.", (size_t) len, IDSET_HEADER_SIZE);
	if (base[0] != IDSET_VERSION)
		BAD("Format version %d is not supported (this ecrm reads version %d).", base[0], IDSET_VERSION);
	if (base[1] != 0 || GetU16(base + 2) != 0)
		BAD("Reserved header fields are not zero.");
	v->nbuckets = GetU32(base + 4);
	v->cardinality = GetU64(base + 8);
	if (v->nbuckets > (len - IDSET_HEADER_SIZE) / IDSET_DIR_ENTRY)
		BAD("The header announces %u buckets, more than the value can hold.", v->nbuckets);
	need = IDSET_HEADER_SIZE + (Size) IDSET_DIR_ENTRY * v->nbuckets;
	v->dir = base + IDSET_HEADER_SIZE;
	v->blobs = need;
	for (i = 0; i < v->nbuckets; i++)
	{
		uint32		nbytes = GetU32(v->dir + IDSET_DIR_ENTRY * i + 4);

		if (i > 0 && GetU32(v->dir + IDSET_DIR_ENTRY * i) <= GetU32(v->dir + IDSET_DIR_ENTRY * (i - 1)))
			BAD("Bucket keys are not strictly ascending.");
		if (GetU32(v->dir + IDSET_DIR_ENTRY * i) > (uint32) PG_INT32_MAX)
			BAD("A bucket holds ids above 9223372036854775807.");
		if (nbytes > len - need - total)
			BAD("Bucket %u runs past the end of the value.", i);
		total += nbytes;
	}
	if (need + total != len)
		BAD("%zu bytes are left over after the last bucket.", (size_t) (len - need - total));
	if (v->nbuckets == 0 && v->cardinality != 0)
		BAD("An empty set claims " UINT64_FORMAT " ids.", v->cardinality);
#undef BAD
}

static void
ViewFromData(const IdSetData *data, IdSetView *v)
{
	ViewParse((const uint8 *) VARDATA(data), VARSIZE(data) - VARHDRSZ, v, false);
}

static inline uint32
ViewHigh(const IdSetView *v, uint32 i)
{
	return GetU32(v->dir + IDSET_DIR_ENTRY * i);
}

/* Offset (in the data) and length of blob i. */
static void
ViewBlobOffset(const IdSetView *v, uint32 i, Size *off, Size *len)
{
	Size		pos = v->blobs;
	uint32		j;

	for (j = 0; j < i; j++)
		pos += GetU32(v->dir + IDSET_DIR_ENTRY * j + 4);
	*off = pos;
	*len = GetU32(v->dir + IDSET_DIR_ENTRY * i + 4);
}

/* Position and length of blob i. */
static void
ViewBlob(const IdSetView *v, uint32 i, const uint8 **blob, Size *len)
{
	Size		off;

	ViewBlobOffset(v, i, &off, len);
	*blob = v->base + off;
}

static int
ViewFindBucket(const IdSetView *v, uint32 high)
{
	int			lo = 0,
				hi = (int) v->nbuckets - 1;

	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;
		uint32		h = ViewHigh(v, mid);

		if (h == high)
			return mid;
		if (h < high)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

/* Build the in-memory set from bytes; untrusted bytes are validated first. */
IdSet *
IdSetFromBytes(const char *buf, Size len, bool untrusted)
{
	IdSetView	v;
	IdSet	   *set;
	uint32		i;
	Size		pos;
	uint64		total = 0;

	ViewParse((const uint8 *) buf, len, &v, untrusted);
	set = IdSetCreate();
	pos = v.blobs;
	for (i = 0; i < v.nbuckets; i++)
	{
		Size		nbytes = GetU32(v.dir + IDSET_DIR_ENTRY * i + 4);
		roaring_bitmap_t *bm;

		if (untrusted)
			total += BlobValidate(v.base + pos, nbytes);
		bm = roaring_bitmap_portable_deserialize_safe((const char *) v.base + pos, nbytes);
		if (bm == NULL)
		{
			if (untrusted)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
						 errmsg("invalid binary idset"),
						 errdetail("Bucket %u is not a valid portable roaring bitmap.", i)));
			ReportCorrupt("A bucket is not a valid portable roaring bitmap.");
		}
		AppendBucket(set, ViewHigh(&v, i), bm);
		if (untrusted && roaring_bitmap_portable_deserialize_size((const char *) v.base + pos, nbytes) != nbytes)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					 errmsg("invalid binary idset"),
					 errdetail("Bucket %u does not use all of its bytes.", i)));
		pos += nbytes;
	}
	if (untrusted && (total != v.cardinality || IdSetCardinality(set) != total))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid binary idset"),
				 errdetail("The header says " UINT64_FORMAT " ids, the bitmaps hold " UINT64_FORMAT ".",
						   v.cardinality, total)));
	return set;
}

IdSet *
IdSetFromData(const IdSetData *data)
{
	return IdSetFromBytes(VARDATA(data), VARSIZE(data) - VARHDRSZ, false);
}

/*
 * Bitset loops count bits of 1024 words at a time.  PostgreSQL's
 * pg_popcount64 is an indirect call per word on x86-64 (it picks the POPCNT
 * instruction at run time); here the whole loop is compiled for POPCNT and
 * picked once per call when the CPU has it.
 */
#define BITSET_WORDS (BITSET_BYTES / 8)

/* Little-endian bitset word k at p (unaligned: stored bytes). */
static inline uint64
LoadWord(const uint8 *p, int k)
{
	uint64		w;

	memcpy(&w, p + 8 * k, sizeof(w));
#ifdef WORDS_BIGENDIAN
	w = pg_bswap64(w);
#endif
	return w;
}

/* Body of the loops, for each popcount. */
#define AND_COUNT_BODY(POPCOUNT) \
	uint64		n = 0; \
	int			k; \
	for (k = 0; k < BITSET_WORDS; k++) \
		n += POPCOUNT(LoadWord(a, k) & LoadWord(b, k)); \
	return n
#define RUN_STARTS_BODY(POPCOUNT) \
	uint64		carry = 0; \
	int			k, \
				runs = 0; \
	for (k = 0; k < BITSET_WORDS && runs < limit; k++) \
	{ \
		runs += POPCOUNT(w[k] & ~((w[k] << 1) | carry)); \
		carry = w[k] >> 63; \
	} \
	return runs

static uint64
AndCountGeneric(const uint8 *a, const uint8 *b)
{
	AND_COUNT_BODY(pg_popcount64);
}

static int
RunStartsGeneric(const uint64 *w, int limit)
{
	RUN_STARTS_BODY(pg_popcount64);
}

#if defined(__x86_64__) && defined(__GNUC__)
#define HAVE_POPCNT_TARGET 1
static __attribute__((target("popcnt"))) uint64
AndCountPopcnt(const uint8 *a, const uint8 *b)
{
	AND_COUNT_BODY(__builtin_popcountll);
}

static __attribute__((target("popcnt"))) int
RunStartsPopcnt(const uint64 *w, int limit)
{
	RUN_STARTS_BODY(__builtin_popcountll);
}
#endif

/* |a & b| of two stored bitset containers. */
static uint64
BitsetAndCount(const uint8 *a, const uint8 *b)
{
#ifdef HAVE_POPCNT_TARGET
	if (__builtin_cpu_supports("popcnt"))
		return AndCountPopcnt(a, b);
#endif
	return AndCountGeneric(a, b);
}

/* Runs of a bitset container, counted up to limit. */
static int
BitsetRunStarts(const uint64 *w, int limit)
{
#ifdef HAVE_POPCNT_TARGET
	if (__builtin_cpu_supports("popcnt"))
		return RunStartsPopcnt(w, limit);
#endif
	return RunStartsGeneric(w, limit);
}

/*
 * Could runs make this container (of type type) worth converting?  Runs are
 * counted, as CRoaring's run_optimize does for every container, but the
 * count stops as soon as runs cannot pay off, early for the usual array and
 * bitset containers of customer ids.  An array (or a run container) says yes
 * whenever runs may be smaller; a bitset only when runs take at most half of
 * its 8 kB (fewer than 1024 runs: ranges, a union of two halves), not for the
 * last few percent of a 97%-dense bitset, whose conversion by CRoaring 0.2.66
 * costs several times the union that made it.
 */
static bool
ContainerMayShrinkByRuns(uint8 type, const void *container)
{
	if (type == ARRAY_CONTAINER_TYPE_CODE)
	{
		const array_container_t *c = (const array_container_t *) container;
		int32		k,
					runs = 1;

		/* runs pay when 2 + 4 runs < 2 card */
		for (k = 1; k < c->cardinality && 4 * runs <= 2 * c->cardinality + 4; k++)
			runs += c->array[k] != (uint16) (c->array[k - 1] + 1);
		return 4 * runs <= 2 * c->cardinality + 4;
	}
	if (type == BITSET_CONTAINER_TYPE_CODE)
	{
		/* runs halve the bitset when 2 + 4 runs <= 4096 */
		return BitsetRunStarts(((const bitset_container_t *) container)->array, 1024) < 1024;
	}
	return true;				/* a run container: CRoaring picks its smallest form */
}

/*
 * Run-optimise the containers that may shrink, one by one with CRoaring's
 * own conversion (convert_run_optimize, which keeps a container when runs
 * are not smaller): the choice per container depends on its ids only, and
 * the containers that cannot shrink are not converted nor counted in full.
 * convert_run_optimize is what roaring_bitmap_run_optimize calls for each
 * container; CRoaring 0.2.66 declares it in roaring/containers/convert.h.
 */
static void
RunOptimize(roaring_bitmap_t *bm)
{
	roaring_array_t *ra = &bm->high_low_container;
	int			i;

	for (i = 0; i < ra->size; i++)
	{
		uint8		type = ra->typecodes[i],
					after;

		if (type == SHARED_CONTAINER_TYPE_CODE)
		{
			/* copy-on-write containers are never made here; CRoaring unshares them */
			roaring_bitmap_run_optimize(bm);
			return;
		}
		if (!ContainerMayShrinkByRuns(type, ra->containers[i]))
			continue;
		ra->containers[i] = convert_run_optimize(ra->containers[i], type, &after);
		ra->typecodes[i] = after;
	}
}

/* Serialise: run-optimise each bitmap, then write header, directory and blobs. */
IdSetData *
IdSetToData(IdSet *set)
{
	Size		total = IDSET_HEADER_SIZE;
	Size	   *sizes;
	IdSetData  *out;
	uint8	   *p;
	uint64		card = 0;
	int			i,
				n = 0;

	sizes = palloc(sizeof(Size) * Max(set->nbuckets, 1));
	for (i = 0; i < set->nbuckets; i++)
	{
		RunOptimize(set->bitmaps[i]);
		roaring_bitmap_shrink_to_fit(set->bitmaps[i]);
		sizes[i] = roaring_bitmap_portable_size_in_bytes(set->bitmaps[i]);
		if (roaring_bitmap_is_empty(set->bitmaps[i]))
			continue;
		total = add_size(total, add_size(IDSET_DIR_ENTRY, sizes[i]));
		card += roaring_bitmap_get_cardinality(set->bitmaps[i]);
		n++;
	}
	if (total > MaxAllocSize - VARHDRSZ || total > PG_UINT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("idset is too large (%zu bytes)", (size_t) total),
				 errdetail("An idset value is at most %zu bytes.", (size_t) (MaxAllocSize - VARHDRSZ))));
	out = palloc(VARHDRSZ + total);
	SET_VARSIZE(out, VARHDRSZ + total);
	p = (uint8 *) VARDATA(out);
	p[0] = IDSET_VERSION;
	p[1] = 0;
	p[2] = p[3] = 0;
	PutU32(p + 4, n);
	PutU64(p + 8, card);
	p += IDSET_HEADER_SIZE;
	for (i = 0; i < set->nbuckets; i++)
	{
		if (roaring_bitmap_is_empty(set->bitmaps[i]))
			continue;
		PutU32(p, set->highs[i]);
		PutU32(p + 4, (uint32) sizes[i]);
		p += IDSET_DIR_ENTRY;
	}
	for (i = 0; i < set->nbuckets; i++)
	{
		if (roaring_bitmap_is_empty(set->bitmaps[i]))
			continue;
		if (roaring_bitmap_portable_serialize(set->bitmaps[i], (char *) p) != sizes[i])
			elog(ERROR, "roaring bitmap serialised to an unexpected size");
		p += sizes[i];
	}
	pfree(sizes);
	return out;
}

IdSetData *
IdSetEmptyData(void)
{
	IdSetData  *out = palloc0(VARHDRSZ + IDSET_HEADER_SIZE);

	SET_VARSIZE(out, VARHDRSZ + IDSET_HEADER_SIZE);
	((uint8 *) VARDATA(out))[0] = IDSET_VERSION;
	return out;
}

/* Serialise a temporary set, free its bitmaps and return the datum. */
static Datum
IdSetReturn(IdSet *set)
{
	IdSetData  *out = IdSetToData(set);

	IdSetFree(set);
	PG_RETURN_POINTER(out);
}

/* ----------------------------------------------------------------
 * Set algebra on in-memory sets
 * ---------------------------------------------------------------- */
typedef enum IdSetOp
{
	OP_OR,
	OP_AND,
	OP_ANDNOT,
	OP_XOR
} IdSetOp;

static roaring_bitmap_t *
CopyBitmap(const roaring_bitmap_t *bm)
{
	roaring_bitmap_t *c = roaring_bitmap_copy(bm);

	if (c == NULL)
		ReportOutOfMemory();
	return c;
}

static IdSet *
IdSetBinary(const IdSet *a, const IdSet *b, IdSetOp op)
{
	IdSet	   *r = IdSetCreate();
	int			i = 0,
				j = 0;

	while (i < a->nbuckets || j < b->nbuckets)
	{
		bool		in_a = i < a->nbuckets && (j >= b->nbuckets || a->highs[i] <= b->highs[j]);
		bool		in_b = j < b->nbuckets && (i >= a->nbuckets || b->highs[j] <= a->highs[i]);

		CHECK_FOR_INTERRUPTS();
		if (in_a && in_b)
		{
			roaring_bitmap_t *x = NULL;

			switch (op)
			{
				case OP_OR:
					x = roaring_bitmap_or(a->bitmaps[i], b->bitmaps[j]);
					break;
				case OP_AND:
					x = roaring_bitmap_and(a->bitmaps[i], b->bitmaps[j]);
					break;
				case OP_ANDNOT:
					x = roaring_bitmap_andnot(a->bitmaps[i], b->bitmaps[j]);
					break;
				case OP_XOR:
					x = roaring_bitmap_xor(a->bitmaps[i], b->bitmaps[j]);
					break;
			}
			if (x == NULL)
				ReportOutOfMemory();
			AppendBucket(r, a->highs[i], x);
			i++, j++;
		}
		else if (in_a)
		{
			if (op != OP_AND)
				AppendBucket(r, a->highs[i], CopyBitmap(a->bitmaps[i]));
			i++;
		}
		else
		{
			if (op == OP_OR || op == OP_XOR)
				AppendBucket(r, b->highs[j], CopyBitmap(b->bitmaps[j]));
			j++;
		}
	}
	return r;
}

void
IdSetOrInPlace(IdSet *a, const IdSet *b)
{
	int			j;

	for (j = 0; j < b->nbuckets; j++)
	{
		int			pos = FindBucket(a, b->highs[j]);

		CHECK_FOR_INTERRUPTS();
		if (pos >= 0)
		{
			roaring_bitmap_or_inplace(a->bitmaps[pos], b->bitmaps[j]);
			IdSetGrew(a, BitmapMemory(b->bitmaps[j]));
		}
		else
			InsertBucket(a, -pos - 1, b->highs[j], CopyBitmap(b->bitmaps[j]));
	}
}

void
IdSetAndInPlace(IdSet *a, const IdSet *b)
{
	int			i = 0;

	while (i < a->nbuckets)
	{
		int			pos = FindBucket(b, a->highs[i]);

		CHECK_FOR_INTERRUPTS();
		if (pos >= 0)
		{
			roaring_bitmap_and_inplace(a->bitmaps[i], b->bitmaps[pos]);
			if (!roaring_bitmap_is_empty(a->bitmaps[i]))
			{
				i++;
				continue;
			}
		}
		RemoveBucket(a, i);
	}
}

/* a - b, in a's bitmaps. */
static void
IdSetAndNotInPlace(IdSet *a, const IdSet *b)
{
	int			i = 0;

	while (i < a->nbuckets)
	{
		int			pos = FindBucket(b, a->highs[i]);

		CHECK_FOR_INTERRUPTS();
		if (pos >= 0)
		{
			roaring_bitmap_andnot_inplace(a->bitmaps[i], b->bitmaps[pos]);
			if (roaring_bitmap_is_empty(a->bitmaps[i]))
			{
				RemoveBucket(a, i);
				continue;
			}
		}
		i++;
	}
}

static bool
IdSetIsSubset(const IdSet *a, const IdSet *b)
{
	int			i;

	for (i = 0; i < a->nbuckets; i++)
	{
		int			pos = FindBucket(b, a->highs[i]);

		if (pos < 0 || !roaring_bitmap_is_subset(a->bitmaps[i], b->bitmaps[pos]))
			return false;
	}
	return true;
}

static bool
IdSetIntersects(const IdSet *a, const IdSet *b)
{
	int			i = 0,
				j = 0;

	while (i < a->nbuckets && j < b->nbuckets)
	{
		if (a->highs[i] == b->highs[j])
		{
			if (roaring_bitmap_intersect(a->bitmaps[i++], b->bitmaps[j++]))
				return true;
		}
		else if (a->highs[i] < b->highs[j])
			i++;
		else
			j++;
	}
	return false;
}

/* ----------------------------------------------------------------
 * Text input and output
 * ---------------------------------------------------------------- */
static void
SkipSpace(const char **p)
{
	while (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')
		(*p)++;
}

static void SyntaxError(const char *str, const char *at, const char *what) pg_attribute_noreturn();

static void
SyntaxError(const char *str, const char *at, const char *what)
{
	int			charpos = pg_mbstrlen_with_len(str, at - str) + 1;

	if (*at == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type idset: \"%s\"", str),
				 errdetail("%s at the end of the input.", what),
				 errhint("Write an idset like {1,2,5-9}: non-negative ids and ranges in braces.")));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid input syntax for type idset: \"%s\"", str),
			 errdetail("%s at character %d (\"%.*s\").", what, charpos, pg_mblen(at), at),
			 errhint("Write an idset like {1,2,5-9}: non-negative ids and ranges in braces.")));
}

/* Parse one id at *p, advancing past it. */
static int64
ParseId(const char *str, const char **p)
{
	const char *start = *p;
	int64		v = 0;

	if (**p == '-')
		SyntaxError(str, *p, "Ids must not be negative: unexpected \"-\"");
	if (!(**p >= '0' && **p <= '9'))
		SyntaxError(str, *p, (**p == ',' || **p == '}') ? "Missing id" : "Expected an id");
	while (**p >= '0' && **p <= '9')
	{
		if (pg_mul_s64_overflow(v, 10, &v) || pg_add_s64_overflow(v, **p - '0', &v))
		{
			while (**p >= '0' && **p <= '9')
				(*p)++;
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("value \"%.*s\" is out of range for type idset", (int) (*p - start), start),
					 errdetail("Ids lie between 0 and " INT64_FORMAT ".", PG_INT64_MAX)));
		}
		(*p)++;
	}
	return v;
}

PG_FUNCTION_INFO_V1(ecrm_idset_in);
/* idset text input: {1,2,5-9} */
Datum
ecrm_idset_in(PG_FUNCTION_ARGS)
{
	const char *str = PG_GETARG_CSTRING(0);
	const char *p = str;
	IdSet	   *set;
	int64		buf[1024];
	int			n = 0;
	uint64		chunks = 0;

	SkipSpace(&p);
	if (*p != '{')
		SyntaxError(str, p, "Expected \"{\"");
	p++;
	set = IdSetCreate();
	SkipSpace(&p);
	if (*p != '}')
	{
		for (;;)
		{
			int64		lo,
						hi;

			CHECK_FOR_INTERRUPTS();
			SkipSpace(&p);
			lo = ParseId(str, &p);
			SkipSpace(&p);
			if (*p == '-')
			{
				const char *dash = p;

				p++;
				SkipSpace(&p);
				if (*p == '-')
					SyntaxError(str, p, "Ids must not be negative: unexpected \"-\"");
				hi = ParseId(str, &p);
				if (hi < lo)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
							 errmsg("invalid input syntax for type idset: \"%s\"", str),
							 errdetail("Range " INT64_FORMAT "-" INT64_FORMAT " at character %d ends before it starts.",
									   lo, hi, pg_mbstrlen_with_len(str, dash - str) + 1)));
				chunks += RangeChunks(lo, hi);
				if (chunks > IDSET_MAX_CHUNKS)
					ereport(ERROR,
							(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
							 errmsg("idset ranges cover too many ids"),
							 errdetail("With ecrm.idset_max_memory at %zu MB the ranges of one idset may touch " UINT64_FORMAT " blocks of 65536 ids.",
									   IDSET_MAX_MEMORY >> 20, IDSET_MAX_CHUNKS),
							 errhint("Split the ranges into several sets, or raise ecrm.idset_max_memory.")));
				IdSetAddRange(set, lo, hi);
				SkipSpace(&p);
			}
			else
			{
				buf[n++] = lo;
				if (n == lengthof(buf))
				{
					IdSetAddMany(set, buf, n);
					n = 0;
				}
			}
			if (*p == ',')
			{
				p++;
				continue;
			}
			if (*p == '}')
				break;
			SyntaxError(str, p, *p == '\0' ? "Missing \"}\"" : "Expected \",\" or \"}\"");
		}
	}
	p++;
	SkipSpace(&p);
	if (*p != '\0')
		SyntaxError(str, p, "Unexpected text after \"}\"");
	if (n > 0)
		IdSetAddMany(set, buf, n);
	return IdSetReturn(set);
}

/* Text output state: merges consecutive ids into ranges. */
typedef struct OutState
{
	StringInfoData buf;
	bool		any;
	int64		start;
	int64		end;
} OutState;

static void
OutFlush(OutState *o)
{
	if (!o->any)
		return;
	if (o->buf.len > 1)
		appendStringInfoChar(&o->buf, ',');
	if (o->start == o->end)
		appendStringInfo(&o->buf, INT64_FORMAT, o->start);
	else if (o->end == o->start + 1)
		appendStringInfo(&o->buf, INT64_FORMAT "," INT64_FORMAT, o->start, o->end);
	else
		appendStringInfo(&o->buf, INT64_FORMAT "-" INT64_FORMAT, o->start, o->end);
}

/* Feed the range lo..hi (ascending across calls). */
static inline void
OutRange(OutState *o, int64 lo, int64 hi)
{
	if (o->any && lo == o->end + 1)
	{
		o->end = hi;
		return;
	}
	OutFlush(o);
	o->any = true;
	o->start = lo;
	o->end = hi;
}

PG_FUNCTION_INFO_V1(ecrm_idset_out);
/* idset text output: ascending ids, runs of three or more as ranges */
Datum
ecrm_idset_out(PG_FUNCTION_ARGS)
{
	IdSetData  *data = PG_GETARG_IDSETDATA(0);
	IdSetView	v;
	OutState	o;
	uint32		b;

	ViewFromData(data, &v);
	initStringInfo(&o.buf);
	appendStringInfoChar(&o.buf, '{');
	o.any = false;
	for (b = 0; b < v.nbuckets; b++)
	{
		const uint8 *blob;
		Size		len;
		BlobView	bv;
		uint32		i;
		uint64		high = (uint64) ViewHigh(&v, b) << 32;

		ViewBlob(&v, b, &blob, &len);
		if (!BlobParse(blob, len, &bv))
			ReportCorrupt("A bitmap header does not fit in its bucket.");
		for (i = 0; i < bv.size; i++)
		{
			Size		pos = BlobContainerPos(&bv, i);
			const uint8 *c = blob + pos;
			int64		base = (int64) (high | ((uint64) BV_KEY(&bv, i) << 16));

			CHECK_FOR_INTERRUPTS();
			if (BlobContainerBytes(&bv, i, pos) == 0)
				ReportCorrupt("A bitmap container runs past the end of its bucket.");
			if (BV_ISRUN(&bv, i))
			{
				uint32		r,
							nruns = GetU16(c);

				for (r = 0; r < nruns; r++)
				{
					int64		s = base + GetU16(c + 2 + 4 * r);

					OutRange(&o, s, s + GetU16(c + 4 + 4 * r));
				}
			}
			else if (BV_CARD(&bv, i) > ARRAY_MAX_CARD)
			{
				int			w;

				for (w = 0; w < BITSET_BYTES; w++)
				{
					uint32		byte = c[w];

					while (byte)
					{
						int			bit = pg_rightmost_one_pos32(byte);
						int64		x = base + w * 8 + bit;

						OutRange(&o, x, x);
						byte &= byte - 1;
					}
				}
			}
			else
			{
				uint32		k;

				for (k = 0; k < BV_CARD(&bv, i); k++)
				{
					int64		x = base + GetU16(c + 2 * k);

					OutRange(&o, x, x);
				}
			}
		}
	}
	OutFlush(&o);
	appendStringInfoChar(&o.buf, '}');
	PG_RETURN_CSTRING(o.buf.data);
}

PG_FUNCTION_INFO_V1(ecrm_idset_recv);
/* idset binary input: untrusted, validated byte by byte, then rebuilt */
Datum
ecrm_idset_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	const char *bytes = pq_getmsgbytes(buf, buf->len - buf->cursor);
	IdSet	   *set;

	set = IdSetFromBytes(bytes, buf->len - (bytes - buf->data), true);
	return IdSetReturn(set);
}

PG_FUNCTION_INFO_V1(ecrm_idset_send);
/* idset binary output: the stored bytes (little-endian, versioned) */
Datum
ecrm_idset_send(PG_FUNCTION_ARGS)
{
	IdSetData  *data = PG_GETARG_IDSETDATA(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendbytes(&buf, VARDATA(data), VARSIZE(data) - VARHDRSZ);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* ----------------------------------------------------------------
 * Reads on the serialised form, in slices when it is stored
 *
 * A membership test needs the header, the bucket directory, one bitmap's
 * container table and a few bytes of one container.  A set stored out of
 * line uncompressed (STORAGE EXTERNAL, as ecrm.segment.members) is read as
 * slices of its TOAST value, so a test on a megabyte set fetches one or two
 * TOAST chunks instead of the whole value.  Other values are read whole;
 * both go through the same code.
 * ---------------------------------------------------------------- */
#define READER_PREFIX_BYTES TOAST_MAX_CHUNK_SIZE	/* fetched first: header,
														 * directory and usually
														 * the container table */

typedef struct SetReader
{
	struct varlena *toast;		/* the value read in slices, or NULL */
	const uint8 *whole;			/* else all its data */
	Size		len;			/* data bytes (after the varlena header) */
	const uint8 *prefix;		/* toast: its first prefix_len bytes */
	Size		prefix_len;
} SetReader;

/* Where one bitmap of a set lies, with its container table. */
typedef struct BlobRef
{
	Size		off;			/* of the bitmap in the set's data */
	Size		len;
	BlobView	v;				/* over the bitmap's header bytes only */
	Size		hdrlen;
} BlobRef;

static void
ReaderFromData(SetReader *r, const IdSetData *data)
{
	memset(r, 0, sizeof(*r));
	r->whole = (const uint8 *) VARDATA(data);
	r->len = VARSIZE(data) - VARHDRSZ;
}

/*
 * Is raw stored out of line uncompressed (readable in slices)?  Fills ptr
 * when it is out of line.  (VARATT_EXTERNAL_IS_COMPRESSED, without its
 * signed comparison.)
 */
static bool
ToastSliceable(struct varlena *raw, struct varatt_external *ptr)
{
	if (!VARATT_IS_EXTERNAL_ONDISK(raw))
		return false;
	VARATT_EXTERNAL_GET_POINTER(*ptr, raw);
	return (Size) VARATT_EXTERNAL_GET_EXTSIZE(*ptr) >= (Size) (ptr->va_rawsize - VARHDRSZ);
}

/* raw: an external on-disk, uncompressed value (ptr is its pointer). */
static void
ReaderFromToast(SetReader *r, struct varlena *raw, const struct varatt_external *ptr)
{
	memset(r, 0, sizeof(*r));
	r->toast = raw;
	r->len = VARATT_EXTERNAL_GET_EXTSIZE(*ptr);
}

/* n bytes at off (checked against the value's length). */
static const uint8 *
ReaderGet(SetReader *r, Size off, Size n)
{
	struct varlena *slice;

	if (off > r->len || n > r->len - off)
		ReportCorrupt("A part of the idset lies past its end.");
	if (r->whole != NULL)
		return r->whole + off;
	if (r->prefix == NULL)
	{
		r->prefix_len = Min(r->len, READER_PREFIX_BYTES);
		slice = detoast_attr_slice(r->toast, 0, (int32) r->prefix_len);
		if (VARSIZE(slice) - VARHDRSZ != r->prefix_len)
			ReportCorrupt("The stored idset is shorter than its TOAST pointer says.");
		r->prefix = (const uint8 *) VARDATA(slice);
	}
	if (off + n <= r->prefix_len)
		return r->prefix + off;
	slice = detoast_attr_slice(r->toast, (int32) off, (int32) n);
	if (VARSIZE(slice) - VARHDRSZ != n)
		ReportCorrupt("The stored idset is shorter than its TOAST pointer says.");
	return (const uint8 *) VARDATA(slice);
}

/* Header and directory. */
static void
ReaderView(SetReader *r, IdSetView *v)
{
	const uint8 *h = ReaderGet(r, 0, IDSET_HEADER_SIZE);
	uint32		nb = GetU32(h + 4);

	if (nb > (r->len - IDSET_HEADER_SIZE) / IDSET_DIR_ENTRY)
		ReportCorrupt("The idset header is inconsistent.");
	h = ReaderGet(r, 0, IDSET_HEADER_SIZE + (Size) IDSET_DIR_ENTRY * nb);
	/* reads the header and directory only; len is the whole value's */
	ViewParse(h, r->len, v, false);
}

/* Bitmap b of the set: its place and its container table. */
static void
ReaderBlob(SetReader *r, const IdSetView *v, uint32 b, BlobRef *br)
{
	const uint8 *p;
	uint32		cookie,
				size;

	ViewBlobOffset(v, b, &br->off, &br->len);
	p = ReaderGet(r, br->off, Min(br->len, 8));
	if (br->len < 8)
		ReportCorrupt("A bitmap header does not fit in its bucket.");
	cookie = GetU32(p);
	if ((cookie & 0xFFFF) == SERIAL_COOKIE)
	{
		size = (cookie >> 16) + 1;
		br->hdrlen = 4 + (size + 7) / 8 + (Size) 4 * size + (size >= NO_OFFSET_THRESHOLD ? (Size) 4 * size : 0);
	}
	else if (cookie == SERIAL_COOKIE_NO_RUN && GetU32(p + 4) <= 65536)
		br->hdrlen = 8 + (Size) 8 * GetU32(p + 4);
	else
		ReportCorrupt("A bitmap header is malformed.");
	if (br->hdrlen > br->len)
		ReportCorrupt("A bitmap header does not fit in its bucket.");
	p = ReaderGet(r, br->off, br->hdrlen);
	if (!BlobParse(p, br->hdrlen, &br->v) || br->v.size == 0)
		ReportCorrupt("A bitmap header does not fit in its bucket.");
}

/* Bytes of bitmap br at off..off+n (relative to the bitmap). */
static const uint8 *
ReaderBlobGet(SetReader *r, const BlobRef *br, Size off, Size n)
{
	if (off > br->len || n > br->len - off)
		ReportCorrupt("A bitmap container runs past the end of its bucket.");
	return ReaderGet(r, br->off + off, n);
}

/* Bytes of container i at pos (relative to the bitmap). */
static Size
ReaderContainerBytes(SetReader *r, const BlobRef *br, uint32 i, Size pos)
{
	if (BV_ISRUN(&br->v, i))
		return 2 + (Size) 4 * GetU16(ReaderBlobGet(r, br, pos, 2));
	if (BV_CARD(&br->v, i) > ARRAY_MAX_CARD)
		return BITSET_BYTES;
	return (Size) 2 * BV_CARD(&br->v, i);
}

/* Where container i starts, relative to the bitmap. */
static Size
ReaderContainerPos(SetReader *r, const BlobRef *br, uint32 i)
{
	Size		pos;
	uint32		j;

	if (br->v.offsets != NULL)
		pos = GetU32(br->v.offsets + 4 * i);
	else
	{
		/* fewer than four containers: add up the ones before */
		pos = br->hdrlen;
		for (j = 0; j < i; j++)
			pos += ReaderContainerBytes(r, br, j, pos);
	}
	if (pos < br->hdrlen || pos > br->len)
		ReportCorrupt("A bitmap container offset lies outside its bucket.");
	return pos;
}

/* Index of the container holding key, or -1. */
static int
BlobFindKey(const BlobView *v, uint16 key)
{
	int			lo = 0,
				hi = (int) v->size - 1;

	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;
		uint16		k = BV_KEY(v, mid);

		if (k == key)
			return mid;
		if (k < key)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

static bool
ReaderContains(SetReader *r, int64 id)
{
	IdSetView	v;
	BlobRef		br;
	int			b,
				i;
	Size		pos;
	uint16		x = (uint16) id;
	bool		isrun;
	uint32		card;

	if (id < 0)
		return false;
	ReaderView(r, &v);
	b = ViewFindBucket(&v, (uint32) ((uint64) id >> 32));
	if (b < 0)
		return false;
	ReaderBlob(r, &v, b, &br);
	i = BlobFindKey(&br.v, (uint16) ((uint32) id >> 16));
	if (i < 0)
		return false;
	pos = ReaderContainerPos(r, &br, i);
	isrun = BV_ISRUN(&br.v, i);
	card = BV_CARD(&br.v, i);
	if (!isrun && card > ARRAY_MAX_CARD)
	{
		/* a bitset: fetch just the byte that holds x */
		if (pos + BITSET_BYTES > br.len)
			ReportCorrupt("A bitmap container runs past the end of its bucket.");
		return (*ReaderBlobGet(r, &br, pos + x / 8, 1) >> (x % 8)) & 1;
	}
	return ContainerHas(ReaderBlobGet(r, &br, pos, ReaderContainerBytes(r, &br, i, pos)), isrun, card, x);
}

/* Detoast raw into memory context cxt. */
static IdSetData *
DetoastIn(MemoryContext cxt, struct varlena *raw)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	IdSetData  *data = (IdSetData *) detoast_attr(raw);

	MemoryContextSwitchTo(old);
	return data;
}

/*
 * Stored sets a query tests (fn_extra).  A stored value is read in slices at
 * its first test; when the same query tests it again (a join, many ids, a
 * view that checks every segment for every customer), it is detoasted once
 * and later tests read memory.  Toast values never change in place, so the
 * TOAST pointer identifies a value.  At most CACHE_ENTRIES values, holding
 * at most work_mem of detoasted bytes, least recently used first out.
 */
#define CACHE_ENTRIES 8

typedef struct CacheEntry
{
	Oid			toastrelid;
	Oid			valueid;
	uint64		lastuse;
	IdSetData  *data;			/* detoasted, or NULL */
} CacheEntry;

typedef struct SetCache
{
	uint64		clock;
	Size		bytes;			/* detoasted bytes held */
	int			n;
	CacheEntry	e[CACHE_ENTRIES];
} SetCache;

static void
ReaderForArg(FunctionCallInfo fcinfo, int argno, SetReader *r)
{
	struct varlena *raw = (struct varlena *) DatumGetPointer(PG_GETARG_DATUM(argno));
	SetCache   *cache = (SetCache *) fcinfo->flinfo->fn_extra;
	CacheEntry *e = NULL;
	struct varatt_external ptr;
	bool		sliceable;
	Size		size;
	int			i;

	if (!VARATT_IS_EXTERNAL_ONDISK(raw))
	{
		ReaderFromData(r, DatumGetIdSetData(PointerGetDatum(raw)));
		return;
	}
	sliceable = ToastSliceable(raw, &ptr);
	size = VARATT_EXTERNAL_GET_EXTSIZE(ptr);
	if (cache == NULL)
	{
		cache = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(SetCache));
		fcinfo->flinfo->fn_extra = cache;
	}
	for (i = 0; i < cache->n; i++)
		if (cache->e[i].valueid == ptr.va_valueid && cache->e[i].toastrelid == ptr.va_toastrelid)
			e = &cache->e[i];
	if (e == NULL)
	{
		/* first test of this value: remember it, read it in slices */
		if (cache->n < CACHE_ENTRIES)
			e = &cache->e[cache->n++];
		else
		{
			e = &cache->e[0];
			for (i = 1; i < cache->n; i++)
				if (cache->e[i].lastuse < e->lastuse)
					e = &cache->e[i];
			if (e->data != NULL)
			{
				cache->bytes -= VARSIZE(e->data);
				pfree(e->data);
			}
		}
		e->toastrelid = ptr.va_toastrelid;
		e->valueid = ptr.va_valueid;
		e->data = NULL;
		e->lastuse = ++cache->clock;
		if (sliceable)
		{
			ReaderFromToast(r, raw, &ptr);
			return;
		}
	}
	e->lastuse = ++cache->clock;
	if (e->data == NULL && cache->bytes + size <= (Size) work_mem * 1024)
	{
		e->data = DetoastIn(fcinfo->flinfo->fn_mcxt, raw);
		cache->bytes += VARSIZE(e->data);
	}
	if (e->data != NULL)
		ReaderFromData(r, e->data);
	else if (sliceable)
		ReaderFromToast(r, raw, &ptr);
	else
		ReaderFromData(r, (IdSetData *) detoast_attr(raw));
}

PG_FUNCTION_INFO_V1(ecrm_idset_contains_id);
/* idset @> bigint */
Datum
ecrm_idset_contains_id(PG_FUNCTION_ARGS)
{
	SetReader	r;

	ReaderForArg(fcinfo, 0, &r);
	PG_RETURN_BOOL(ReaderContains(&r, PG_GETARG_INT64(1)));
}

PG_FUNCTION_INFO_V1(ecrm_idset_id_contained);
/* bigint <@ idset */
Datum
ecrm_idset_id_contained(PG_FUNCTION_ARGS)
{
	SetReader	r;

	ReaderForArg(fcinfo, 1, &r);
	PG_RETURN_BOOL(ReaderContains(&r, PG_GETARG_INT64(0)));
}

PG_FUNCTION_INFO_V1(ecrm_idset_cardinality);
/* Number of ids (read from the header) */
Datum
ecrm_idset_cardinality(PG_FUNCTION_ARGS)
{
	IdSetView	v;
	IdSetData  *data = (IdSetData *) PG_DETOAST_DATUM_SLICE(PG_GETARG_DATUM(0), 0, IDSET_HEADER_SIZE);

	if (VARSIZE(data) - VARHDRSZ < IDSET_HEADER_SIZE || ((uint8 *) VARDATA(data))[0] != IDSET_VERSION)
		ReportCorrupt("The idset header is inconsistent.");
	v.cardinality = GetU64((uint8 *) VARDATA(data) + 8);
	if (v.cardinality > (uint64) PG_INT64_MAX)
		ReportCorrupt("The idset header is inconsistent.");
	PG_RETURN_INT64((int64) v.cardinality);
}

PG_FUNCTION_INFO_V1(ecrm_idset_is_empty);
/* Whether the set has no ids */
Datum
ecrm_idset_is_empty(PG_FUNCTION_ARGS)
{
	IdSetData  *data = (IdSetData *) PG_DETOAST_DATUM_SLICE(PG_GETARG_DATUM(0), 0, IDSET_HEADER_SIZE);

	if (VARSIZE(data) - VARHDRSZ < IDSET_HEADER_SIZE)
		ReportCorrupt("The idset header is inconsistent.");
	PG_RETURN_BOOL(GetU32((uint8 *) VARDATA(data) + 4) == 0);
}

/* Smallest or largest id: reads the first or last container only. */
static Datum
Extreme(FunctionCallInfo fcinfo, bool largest)
{
	struct varlena *raw = (struct varlena *) DatumGetPointer(PG_GETARG_DATUM(0));
	SetReader	r;
	IdSetView	v;
	BlobRef		br;
	uint32		b,
				i;
	Size		pos;

	struct varatt_external ptr;

	if (ToastSliceable(raw, &ptr))
		ReaderFromToast(&r, raw, &ptr);
	else
		ReaderFromData(&r, DatumGetIdSetData(PointerGetDatum(raw)));
	ReaderView(&r, &v);
	if (v.nbuckets == 0)
		PG_RETURN_NULL();
	b = largest ? v.nbuckets - 1 : 0;
	ReaderBlob(&r, &v, b, &br);
	i = largest ? br.v.size - 1 : 0;
	pos = ReaderContainerPos(&r, &br, i);
	PG_RETURN_INT64(MakeId(ViewHigh(&v, b),
						   ((uint32) BV_KEY(&br.v, i) << 16) |
						   ContainerExtreme(ReaderBlobGet(&r, &br, pos, ReaderContainerBytes(&r, &br, i, pos)),
											BV_ISRUN(&br.v, i), BV_CARD(&br.v, i), largest)));
}

PG_FUNCTION_INFO_V1(ecrm_idset_min);
/* Smallest id, NULL for an empty set */
Datum
ecrm_idset_min(PG_FUNCTION_ARGS)
{
	return Extreme(fcinfo, false);
}

PG_FUNCTION_INFO_V1(ecrm_idset_max);
/* Largest id, NULL for an empty set */
Datum
ecrm_idset_max(PG_FUNCTION_ARGS)
{
	return Extreme(fcinfo, true);
}

/* ----------------------------------------------------------------
 * Intersection size on the stored bytes
 *
 * |a & b| needs no bitmap built: the containers of both sets are read where
 * they lie in the detoasted values and counted pairwise (as
 * pg_roaringbitmap's buffer reader does), instead of copying both sets into
 * CRoaring's memory first.  The bytes are ours (written by IdSetToData, or
 * validated by recv before they were stored), so only bounds are checked,
 * as the other readers of stored bytes do.  Tested against the cardinality
 * of the built intersection (test/sql/idset.sql).
 * ---------------------------------------------------------------- */
typedef struct ContainerRef
{
	const uint8 *c;				/* the container's bytes */
	bool		isrun;
	bool		isbitset;
	uint32		card;			/* ids (array, bitset) */
	uint32		nruns;			/* runs (run) */
} ContainerRef;

/* Ids of a bitset within lo..hi (inclusive). */
static uint32
BitsetRangeCount(const uint8 *c, uint32 lo, uint32 hi)
{
	int			k,
				first = lo / 64,
				last = hi / 64;
	uint64		lomask = ~UINT64CONST(0) << (lo % 64);
	uint64		himask = ~UINT64CONST(0) >> (63 - hi % 64);
	uint32		n = 0;

	if (first == last)
		return pg_popcount64(LoadWord(c, first) & lomask & himask);
	n = pg_popcount64(LoadWord(c, first) & lomask);
	for (k = first + 1; k < last; k++)
		n += pg_popcount64(LoadWord(c, k));
	return n + pg_popcount64(LoadWord(c, last) & himask);
}

#define RUN_START(r, k)	((uint32) GetU16((r)->c + 2 + 4 * (k)))
#define RUN_END(r, k)	(RUN_START(r, k) + GetU16((r)->c + 4 + 4 * (k)))

/* |x & y| of two containers with the same key. */
static uint32
ContainerAndCardinality(const ContainerRef *x, const ContainerRef *y)
{
	uint32		n = 0,
				i = 0,
				j = 0;

	/* order the pair: bitset < array < run */
	if ((x->isrun && !y->isrun) || (!x->isbitset && !x->isrun && y->isbitset))
	{
		const ContainerRef *t = x;

		x = y;
		y = t;
	}
	if (x->isbitset && y->isbitset)
	{
		n = (uint32) BitsetAndCount(x->c, y->c);
	}
	else if (x->isbitset && y->isrun)
	{
		for (j = 0; j < y->nruns; j++)
			n += BitsetRangeCount(x->c, RUN_START(y, j), Min(RUN_END(y, j), 65535));
	}
	else if (x->isbitset)
	{
		for (j = 0; j < y->card; j++)
		{
			uint16		v = GetU16(y->c + 2 * j);

			n += (x->c[v / 8] >> (v % 8)) & 1;
		}
	}
	else if (!x->isrun && !y->isrun)
	{
		while (i < x->card && j < y->card)
		{
			uint16		u = GetU16(x->c + 2 * i),
						v = GetU16(y->c + 2 * j);

			n += u == v;
			i += u <= v;
			j += v <= u;
		}
	}
	else if (!x->isrun)
	{
		/* array and runs: walk both */
		while (i < x->card && j < y->nruns)
		{
			uint32		v = GetU16(x->c + 2 * i);

			if (v > RUN_END(y, j))
				j++;
			else
			{
				n += v >= RUN_START(y, j);
				i++;
			}
		}
	}
	else
	{
		/* runs and runs: add up the overlaps */
		while (i < x->nruns && j < y->nruns)
		{
			uint32		lo = Max(RUN_START(x, i), RUN_START(y, j));
			uint32		xe = RUN_END(x, i),
						ye = RUN_END(y, j);

			if (lo <= Min(xe, ye))
				n += Min(xe, ye) - lo + 1;
			i += xe <= ye;
			j += ye <= xe;
		}
	}
	return n;
}

static void
ContainerAt(const BlobView *v, uint32 i, ContainerRef *r)
{
	Size		pos = BlobContainerPos(v, i);

	if (pos > v->len || BlobContainerBytes(v, i, pos) == 0)
		ReportCorrupt("A bitmap container runs past the end of its bucket.");
	r->c = v->buf + pos;
	r->isrun = BV_ISRUN(v, i);
	r->card = BV_CARD(v, i);
	r->isbitset = !r->isrun && r->card > ARRAY_MAX_CARD;
	r->nruns = r->isrun ? GetU16(r->c) : 0;
}

/* |a & b| of two portable bitmaps. */
static uint64
BlobAndCardinality(const uint8 *a, Size alen, const uint8 *b, Size blen)
{
	BlobView	va,
				vb;
	uint32		i = 0,
				j = 0;
	uint64		n = 0;

	if (!BlobParse(a, alen, &va) || !BlobParse(b, blen, &vb))
		ReportCorrupt("A bitmap header does not fit in its bucket.");
	while (i < va.size && j < vb.size)
	{
		uint16		ka = BV_KEY(&va, i),
					kb = BV_KEY(&vb, j);

		if (ka == kb)
		{
			ContainerRef x,
						y;

			ContainerAt(&va, i++, &x);
			ContainerAt(&vb, j++, &y);
			n += ContainerAndCardinality(&x, &y);
		}
		else if (ka < kb)
			i++;
		else
			j++;
	}
	return n;
}

/* Number of ids of a stored set, from its header. */
static uint64
DataCardinality(const IdSetData *data)
{
	IdSetView	v;

	ViewFromData(data, &v);
	return v.cardinality;
}

/* |a & b| of two stored sets. */
static uint64
DataAndCardinality(const IdSetData *da, const IdSetData *db)
{
	IdSetView	va,
				vb;
	uint32		i = 0,
				j = 0;
	Size		pa,
				pb;
	uint64		n = 0;

	ViewFromData(da, &va);
	ViewFromData(db, &vb);
	pa = va.blobs;
	pb = vb.blobs;
	while (i < va.nbuckets && j < vb.nbuckets)
	{
		uint32		ha = ViewHigh(&va, i),
					hb = ViewHigh(&vb, j);
		Size		la = GetU32(va.dir + IDSET_DIR_ENTRY * i + 4),
					lb = GetU32(vb.dir + IDSET_DIR_ENTRY * j + 4);

		CHECK_FOR_INTERRUPTS();
		if (ha <= hb)
		{
			if (ha == hb)
				n += BlobAndCardinality(va.base + pa, la, vb.base + pb, lb);
			pa += la;
			i++;
		}
		if (hb <= ha)
		{
			pb += lb;
			j++;
		}
	}
	return n;
}

/* ----------------------------------------------------------------
 * Set algebra and comparisons
 * ---------------------------------------------------------------- */
/* The result is computed in the left operand's bitmaps: no third set is built. */
static Datum
Binary(FunctionCallInfo fcinfo, IdSetOp op)
{
	IdSet	   *a = IdSetFromData(PG_GETARG_IDSETDATA(0));
	IdSet	   *b = IdSetFromData(PG_GETARG_IDSETDATA(1));
	IdSet	   *r = a;

	switch (op)
	{
		case OP_OR:
			IdSetOrInPlace(a, b);
			break;
		case OP_AND:
			IdSetAndInPlace(a, b);
			break;
		case OP_ANDNOT:
			IdSetAndNotInPlace(a, b);
			break;
		case OP_XOR:
			r = IdSetBinary(a, b, op);
			IdSetFree(a);
			break;
	}
	IdSetFree(b);
	return IdSetReturn(r);
}

PG_FUNCTION_INFO_V1(ecrm_idset_or);
/* idset | idset: union */
Datum
ecrm_idset_or(PG_FUNCTION_ARGS)
{
	return Binary(fcinfo, OP_OR);
}

PG_FUNCTION_INFO_V1(ecrm_idset_and);
/* idset & idset: intersection */
Datum
ecrm_idset_and(PG_FUNCTION_ARGS)
{
	return Binary(fcinfo, OP_AND);
}

PG_FUNCTION_INFO_V1(ecrm_idset_andnot);
/* idset - idset: difference */
Datum
ecrm_idset_andnot(PG_FUNCTION_ARGS)
{
	return Binary(fcinfo, OP_ANDNOT);
}

PG_FUNCTION_INFO_V1(ecrm_idset_xor);
/* idset # idset: symmetric difference */
Datum
ecrm_idset_xor(PG_FUNCTION_ARGS)
{
	return Binary(fcinfo, OP_XOR);
}

typedef enum CardOp
{
	CARD_AND,
	CARD_OR,
	CARD_ANDNOT,
	CARD_XOR,
	CARD_JACCARD
} CardOp;

/* |a|, |b| from the headers and |a & b| from the bytes: no set is built. */
static void
BinaryCardinality(FunctionCallInfo fcinfo, uint64 *na, uint64 *nb, uint64 *nand)
{
	IdSetData  *da = PG_GETARG_IDSETDATA(0);
	IdSetData  *db = PG_GETARG_IDSETDATA(1);

	*na = DataCardinality(da);
	*nb = DataCardinality(db);
	*nand = DataAndCardinality(da, db);
}

static Datum
CardinalityOf(FunctionCallInfo fcinfo, CardOp op)
{
	uint64		na,
				nb,
				nand;

	BinaryCardinality(fcinfo, &na, &nb, &nand);
	switch (op)
	{
		case CARD_AND:
			PG_RETURN_INT64((int64) nand);
		case CARD_OR:
			PG_RETURN_INT64((int64) (na + nb - nand));
		case CARD_ANDNOT:
			PG_RETURN_INT64((int64) (na - nand));
		case CARD_XOR:
			PG_RETURN_INT64((int64) (na + nb - 2 * nand));
		case CARD_JACCARD:
			if (na + nb - nand == 0)
				PG_RETURN_NULL();
			PG_RETURN_FLOAT8((double) nand / (double) (na + nb - nand));
	}
	pg_unreachable();
}

PG_FUNCTION_INFO_V1(ecrm_idset_and_cardinality);
/* |a & b| without building the intersection */
Datum
ecrm_idset_and_cardinality(PG_FUNCTION_ARGS)
{
	return CardinalityOf(fcinfo, CARD_AND);
}

PG_FUNCTION_INFO_V1(ecrm_idset_or_cardinality);
/* |a | b| without building the union */
Datum
ecrm_idset_or_cardinality(PG_FUNCTION_ARGS)
{
	return CardinalityOf(fcinfo, CARD_OR);
}

PG_FUNCTION_INFO_V1(ecrm_idset_andnot_cardinality);
/* |a - b| without building the difference */
Datum
ecrm_idset_andnot_cardinality(PG_FUNCTION_ARGS)
{
	return CardinalityOf(fcinfo, CARD_ANDNOT);
}

PG_FUNCTION_INFO_V1(ecrm_idset_xor_cardinality);
/* |a # b| without building the symmetric difference */
Datum
ecrm_idset_xor_cardinality(PG_FUNCTION_ARGS)
{
	return CardinalityOf(fcinfo, CARD_XOR);
}

PG_FUNCTION_INFO_V1(ecrm_idset_jaccard);
/* Jaccard index |a & b| / |a | b|; NULL when both are empty */
Datum
ecrm_idset_jaccard(PG_FUNCTION_ARGS)
{
	return CardinalityOf(fcinfo, CARD_JACCARD);
}

static bool
DataEquals(IdSetData *da, IdSetData *db)
{
	IdSetView	va,
				vb;
	IdSet	   *a,
			   *b;
	bool		eq = true;
	int			i;

	if (VARSIZE(da) == VARSIZE(db) && memcmp(VARDATA(da), VARDATA(db), VARSIZE(da) - VARHDRSZ) == 0)
		return true;
	ViewFromData(da, &va);
	ViewFromData(db, &vb);
	if (va.cardinality != vb.cardinality || va.nbuckets != vb.nbuckets)
		return false;
	a = IdSetFromData(da);
	b = IdSetFromData(db);
	for (i = 0; eq && i < a->nbuckets; i++)
		eq = a->highs[i] == b->highs[i] && roaring_bitmap_equals(a->bitmaps[i], b->bitmaps[i]);
	IdSetFree(a);
	IdSetFree(b);
	return eq;
}

PG_FUNCTION_INFO_V1(ecrm_idset_eq);
/* idset = idset */
Datum
ecrm_idset_eq(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(DataEquals(PG_GETARG_IDSETDATA(0), PG_GETARG_IDSETDATA(1)));
}

PG_FUNCTION_INFO_V1(ecrm_idset_ne);
/* idset <> idset */
Datum
ecrm_idset_ne(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(!DataEquals(PG_GETARG_IDSETDATA(0), PG_GETARG_IDSETDATA(1)));
}

static bool
Subset(IdSetData *da, IdSetData *db)
{
	IdSetView	va,
				vb;
	IdSet	   *a,
			   *b;
	bool		r;

	ViewFromData(da, &va);
	ViewFromData(db, &vb);
	if (va.cardinality > vb.cardinality)
		return false;
	if (va.cardinality == 0)
		return true;
	a = IdSetFromData(da);
	b = IdSetFromData(db);
	r = IdSetIsSubset(a, b);
	IdSetFree(a);
	IdSetFree(b);
	return r;
}

PG_FUNCTION_INFO_V1(ecrm_idset_contains);
/* idset @> idset: every id of the right is in the left */
Datum
ecrm_idset_contains(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(Subset(PG_GETARG_IDSETDATA(1), PG_GETARG_IDSETDATA(0)));
}

PG_FUNCTION_INFO_V1(ecrm_idset_contained);
/* idset <@ idset: every id of the left is in the right */
Datum
ecrm_idset_contained(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(Subset(PG_GETARG_IDSETDATA(0), PG_GETARG_IDSETDATA(1)));
}

PG_FUNCTION_INFO_V1(ecrm_idset_overlaps);
/* idset && idset: the sets share an id */
Datum
ecrm_idset_overlaps(PG_FUNCTION_ARGS)
{
	IdSet	   *a = IdSetFromData(PG_GETARG_IDSETDATA(0));
	IdSet	   *b = IdSetFromData(PG_GETARG_IDSETDATA(1));
	bool		r = IdSetIntersects(a, b);

	IdSetFree(a);
	IdSetFree(b);
	PG_RETURN_BOOL(r);
}

/* ----------------------------------------------------------------
 * Building and changing sets
 * ---------------------------------------------------------------- */
PG_FUNCTION_INFO_V1(ecrm_idset_add);
/* idset | bigint: the set with one more id */
Datum
ecrm_idset_add(PG_FUNCTION_ARGS)
{
	IdSet	   *set = IdSetFromData(PG_GETARG_IDSETDATA(0));

	IdSetAdd(set, PG_GETARG_INT64(1));
	return IdSetReturn(set);
}

PG_FUNCTION_INFO_V1(ecrm_idset_remove);
/* idset - bigint: the set without one id */
Datum
ecrm_idset_remove(PG_FUNCTION_ARGS)
{
	IdSetData  *data = PG_GETARG_IDSETDATA(0);
	int64		id = PG_GETARG_INT64(1);
	IdSet	   *set;
	int			pos;
	SetReader	r;

	ReaderFromData(&r, data);
	if (!ReaderContains(&r, id))
		PG_RETURN_POINTER(data);
	set = IdSetFromData(data);
	pos = FindBucket(set, (uint32) ((uint64) id >> 32));
	roaring_bitmap_remove(set->bitmaps[pos], (uint32) id);
	if (roaring_bitmap_is_empty(set->bitmaps[pos]))
		RemoveBucket(set, pos);
	return IdSetReturn(set);
}

PG_FUNCTION_INFO_V1(ecrm_idset_from_array);
/* idset(bigint[]): the set of the array's ids */
Datum
ecrm_idset_from_array(PG_FUNCTION_ARGS)
{
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(0);
	int			n = ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));
	IdSet	   *set;

	if (ARR_ELEMTYPE(arr) != INT8OID)
		elog(ERROR, "idset(bigint[]) called with an array of type %u", ARR_ELEMTYPE(arr));
	if (ARR_HASNULL(arr))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("an idset cannot hold NULL"),
				 errhint("Remove the NULL elements first, for example with array_remove(a, NULL).")));
	set = IdSetCreate();
	if (n > 0)
	{
		const int64 *ids = (const int64 *) ((char *) arr + ARR_OVERHEAD_NONULLS(ARR_NDIM(arr)));
		int			i;

		for (i = 0; i < n; i += 65536)
		{
			CHECK_FOR_INTERRUPTS();
			IdSetAddMany(set, ids + i, Min(65536, n - i));
		}
	}
	return IdSetReturn(set);
}

PG_FUNCTION_INFO_V1(ecrm_idset_range);
/* idset_range(lo, hi): every id from lo to hi inclusive */
Datum
ecrm_idset_range(PG_FUNCTION_ARGS)
{
	int64		lo = PG_GETARG_INT64(0);
	int64		hi = PG_GETARG_INT64(1);
	IdSet	   *set;

	CheckId(lo);
	CheckId(hi);
	set = IdSetCreate();
	if (lo <= hi)
		IdSetAddRange(set, lo, hi);
	return IdSetReturn(set);
}

/* Cardinality of a set that must fit in memory as an array of ids. */
static int
CheckArraySize(uint64 card)
{
	if (card > (MaxAllocSize - ARR_OVERHEAD_NONULLS(1)) / sizeof(int64))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("idset has too many ids for an array (" UINT64_FORMAT ")", card),
				 errdetail("An array holds at most %zu ids.",
						   (size_t) ((MaxAllocSize - ARR_OVERHEAD_NONULLS(1)) / sizeof(int64))),
				 errhint("Read the ids as rows with idset_unnest().")));
	return (int) card;
}

PG_FUNCTION_INFO_V1(ecrm_idset_to_array);
/* idset_to_array: the ids in ascending order */
Datum
ecrm_idset_to_array(PG_FUNCTION_ARGS)
{
	IdSet	   *set = IdSetFromData(PG_GETARG_IDSETDATA(0));
	int			n = CheckArraySize(IdSetCardinality(set));
	Size		bytes = ARR_OVERHEAD_NONULLS(1) + sizeof(int64) * (Size) n;
	ArrayType  *arr = palloc0(bytes);
	int64	   *out;
	uint32		buf[4096];
	int			i,
				k = 0;

	SET_VARSIZE(arr, bytes);
	arr->ndim = 1;
	arr->dataoffset = 0;
	arr->elemtype = INT8OID;
	*ARR_DIMS(arr) = n;
	*ARR_LBOUND(arr) = 1;
	out = (int64 *) ((char *) arr + ARR_OVERHEAD_NONULLS(1));
	for (i = 0; i < set->nbuckets; i++)
	{
		roaring_uint32_iterator_t it;
		uint32		got;

		roaring_init_iterator(set->bitmaps[i], &it);
		while ((got = roaring_read_uint32_iterator(&it, buf, lengthof(buf))) > 0)
		{
			uint32		j;

			CHECK_FOR_INTERRUPTS();
			for (j = 0; j < got && k < n; j++)
				out[k++] = MakeId(set->highs[i], buf[j]);
		}
	}
	IdSetFree(set);
	if (n == 0)
		PG_RETURN_ARRAYTYPE_P(construct_empty_array(INT8OID));
	PG_RETURN_ARRAYTYPE_P(arr);
}

/* State of idset_unnest between calls. */
typedef struct UnnestState
{
	IdSet	   *set;
	int			bucket;
	roaring_uint32_iterator_t it;
	bool		started;
	uint32		buf[1024];
	uint32		nbuf;
	uint32		next;
} UnnestState;

PG_FUNCTION_INFO_V1(ecrm_idset_unnest);
/* idset_unnest: one row per id, ascending, streamed */
Datum
ecrm_idset_unnest(PG_FUNCTION_ARGS)
{
	FuncCallContext *funcctx;
	UnnestState *st;

	if (SRF_IS_FIRSTCALL())
	{
		MemoryContext old;

		funcctx = SRF_FIRSTCALL_INIT();
		old = MemoryContextSwitchTo(funcctx->multi_call_memory_ctx);
		st = palloc0(sizeof(UnnestState));
		st->set = IdSetFromData(PG_GETARG_IDSETDATA(0));
		funcctx->user_fctx = st;
		MemoryContextSwitchTo(old);
	}
	funcctx = SRF_PERCALL_SETUP();
	st = (UnnestState *) funcctx->user_fctx;
	while (st->next >= st->nbuf)
	{
		if (st->bucket >= st->set->nbuckets)
		{
			IdSetFree(st->set);
			SRF_RETURN_DONE(funcctx);
		}
		if (!st->started)
		{
			roaring_init_iterator(st->set->bitmaps[st->bucket], &st->it);
			st->started = true;
		}
		st->nbuf = roaring_read_uint32_iterator(&st->it, st->buf, lengthof(st->buf));
		st->next = 0;
		if (st->nbuf == 0)
		{
			st->bucket++;
			st->started = false;
		}
	}
	SRF_RETURN_NEXT(funcctx, Int64GetDatum(MakeId(st->set->highs[st->bucket], st->buf[st->next++])));
}

PG_FUNCTION_INFO_V1(ecrm_idset_rank);
/* idset_rank(s, id): how many ids of s are <= id */
Datum
ecrm_idset_rank(PG_FUNCTION_ARGS)
{
	IdSet	   *set = IdSetFromData(PG_GETARG_IDSETDATA(0));
	int64		id = PG_GETARG_INT64(1);
	uint64		n = 0;
	int			i;

	if (id >= 0)
	{
		uint32		high = (uint32) ((uint64) id >> 32);

		for (i = 0; i < set->nbuckets && set->highs[i] <= high; i++)
		{
			if (set->highs[i] < high)
				n += roaring_bitmap_get_cardinality(set->bitmaps[i]);
			else
				n += roaring_bitmap_rank(set->bitmaps[i], (uint32) id);
		}
	}
	IdSetFree(set);
	PG_RETURN_INT64((int64) n);
}

PG_FUNCTION_INFO_V1(ecrm_idset_select);
/* idset_select(s, n): the n-th smallest id (1-based); NULL when n is out of range */
Datum
ecrm_idset_select(PG_FUNCTION_ARGS)
{
	IdSet	   *set = IdSetFromData(PG_GETARG_IDSETDATA(0));
	int64		n = PG_GETARG_INT64(1);
	int			i;

	if (n >= 1)
	{
		uint64		rest = (uint64) n - 1;

		for (i = 0; i < set->nbuckets; i++)
		{
			uint64		card = roaring_bitmap_get_cardinality(set->bitmaps[i]);
			uint32		elem;

			if (rest < card)
			{
				if (!roaring_bitmap_select(set->bitmaps[i], (uint32) rest, &elem))
					elog(ERROR, "roaring bitmap select failed");
				{
					int64		r = MakeId(set->highs[i], elem);

					IdSetFree(set);
					PG_RETURN_INT64(r);
				}
			}
			rest -= card;
		}
	}
	IdSetFree(set);
	PG_RETURN_NULL();
}

/*
 * The stored sets of a variadic idset[] argument (NULL elements skipped),
 * not yet deserialised: many-set operations build one set at a time.
 */
static IdSetData **
DataOfArray(ArrayType *arr, int *count)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i,
				k = 0;
	IdSetData **data;
	int16		typlen;
	bool		typbyval;
	char		typalign;

	get_typlenbyvalalign(ARR_ELEMTYPE(arr), &typlen, &typbyval, &typalign);
	deconstruct_array(arr, ARR_ELEMTYPE(arr), typlen, typbyval, typalign, &elems, &nulls, &n);
	data = palloc(sizeof(IdSetData *) * Max(n, 1));
	for (i = 0; i < n; i++)
		if (!nulls[i])
			data[k++] = DatumGetIdSetData(elems[i]);
	*count = k;
	return data;
}

static int
CompareCardinality(const void *a, const void *b)
{
	uint64		ca = DataCardinality(*(IdSetData *const *) a);
	uint64		cb = DataCardinality(*(IdSetData *const *) b);

	return (ca > cb) - (ca < cb);
}

/*
 * Intersection of many sets: smallest first, each set built only when the
 * intersection so far is not empty yet, and freed after use.
 */
static IdSet *
IntersectMany(IdSetData **data, int n)
{
	IdSet	   *r;
	int			i;

	qsort(data, n, sizeof(IdSetData *), CompareCardinality);
	r = IdSetFromData(data[0]);
	for (i = 1; i < n && r->nbuckets > 0; i++)
	{
		IdSet	   *s;

		CHECK_FOR_INTERRUPTS();
		s = IdSetFromData(data[i]);
		IdSetAndInPlace(r, s);
		IdSetFree(s);
	}
	return r;
}

PG_FUNCTION_INFO_V1(ecrm_idset_intersection);
/* idset_intersection(VARIADIC idset[]) */
Datum
ecrm_idset_intersection(PG_FUNCTION_ARGS)
{
	int			n;
	IdSetData **data = DataOfArray(PG_GETARG_ARRAYTYPE_P(0), &n);

	if (n == 0)
		PG_RETURN_NULL();
	return IdSetReturn(IntersectMany(data, n));
}

PG_FUNCTION_INFO_V1(ecrm_idset_intersection_cardinality);
/* idset_intersection_cardinality(VARIADIC idset[]) */
Datum
ecrm_idset_intersection_cardinality(PG_FUNCTION_ARGS)
{
	int			n;
	IdSetData **data = DataOfArray(PG_GETARG_ARRAYTYPE_P(0), &n);
	IdSet	   *r;
	uint64		card;

	if (n == 0)
		PG_RETURN_NULL();
	if (n == 2)
		card = DataAndCardinality(data[0], data[1]);
	else
	{
		r = IntersectMany(data, n);
		card = IdSetCardinality(r);
		IdSetFree(r);
	}
	PG_RETURN_INT64((int64) card);
}

PG_FUNCTION_INFO_V1(ecrm_idset_union);
/* idset_union(VARIADIC idset[]) */
Datum
ecrm_idset_union(PG_FUNCTION_ARGS)
{
	int			n,
				i;
	IdSetData **data = DataOfArray(PG_GETARG_ARRAYTYPE_P(0), &n);
	IdSet	   *r = IdSetCreate();

	for (i = 0; i < n; i++)
	{
		IdSet	   *s;

		CHECK_FOR_INTERRUPTS();
		s = IdSetFromData(data[i]);
		IdSetOrInPlace(r, s);
		IdSetFree(s);
	}
	return IdSetReturn(r);
}

PG_FUNCTION_INFO_V1(ecrm_idset_from_bytea);
/* idset(bytea): a set from its binary form, validated like binary input */
Datum
ecrm_idset_from_bytea(PG_FUNCTION_ARGS)
{
	bytea	   *b = PG_GETARG_BYTEA_PP(0);

	return IdSetReturn(IdSetFromBytes(VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b), true));
}

PG_FUNCTION_INFO_V1(ecrm_idset_to_bytea);
/* idset_to_bytea: the binary form (what binary output sends) */
Datum
ecrm_idset_to_bytea(PG_FUNCTION_ARGS)
{
	IdSetData  *data = PG_GETARG_IDSETDATA(0);
	bytea	   *out = palloc(VARSIZE(data));

	memcpy(out, data, VARSIZE(data));
	PG_RETURN_BYTEA_P(out);
}
