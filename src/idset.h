/*
 * idset.h — the idset type: a compressed set of non-negative bigint ids.
 *
 * In memory an idset is a sorted map from the high 32 bits of an id to a
 * CRoaring bitmap of the low 32 bits (like CRoaring's Roaring64Map), so ids
 * up to 2^63-1 work.  CRoaring 0.2.66 allocates with malloc and has no
 * memory hook, so every IdSet registers a reset callback on the memory
 * context it lives in: its bitmaps are freed when that context goes away,
 * on success and on error alike.  Nor does PostgreSQL see that memory, so
 * a set bounds its own size: it estimates its malloc'd bytes as it grows
 * (amortised, see IdSetGrew) and fails with PROGRAM_LIMIT_EXCEEDED past
 * IDSET_MAX_MEMORY, and ranges are checked before they are built.
 *
 * On disk (and on the wire, send/recv) an idset is, after the varlena header,
 * little-endian:
 *
 *	 uint8	 version		IDSET_VERSION
 *	 uint8	 flags			0 (reserved)
 *	 uint16	 reserved		0
 *	 uint32	 nbuckets		number of high-32-bit buckets
 *	 uint64	 cardinality	number of ids in the set
 *	 nbuckets x { uint32 high; uint32 nbytes }	ascending by high
 *	 nbuckets blobs, each a CRoaring bitmap in the portable format
 */
#ifndef ECRM_IDSET_H
#define ECRM_IDSET_H

#include "fmgr.h"
#include "roaring/roaring.h"

#include "ecrm.h"

#define IDSET_VERSION		1
#define IDSET_HEADER_SIZE	16
#define IDSET_DIR_ENTRY		8

/*
 * Most malloc'd memory one in-memory set may take: the GUC
 * ecrm.idset_max_memory (kB, default 1 GB).  Estimated as the portable size
 * of its bitmaps plus IDSET_CONTAINER_BYTES per container slot, within about
 * 25% of what glibc reports for CRoaring 0.2.66.
 */
#define IDSET_MAX_MEMORY		((Size) ecrm_idset_max_memory * 1024)
#define IDSET_CONTAINER_BYTES	64

/*
 * A range covers one container per 2^16-id chunk, a full run container of
 * about IDSET_RANGE_CHUNK_BYTES: ranges (text input, idset_range) may touch
 * at most this many chunks, checked before anything is built.
 */
#define IDSET_RANGE_CHUNK_BYTES	80
#define IDSET_ID_BYTES			IDSET_RANGE_CHUNK_BYTES /* most one added id costs */
#define IDSET_MAX_CHUNKS		((uint64) (IDSET_MAX_MEMORY / IDSET_RANGE_CHUNK_BYTES))

typedef struct IdSet
{
	int			nbuckets;
	int			capacity;
	uint32	   *highs;			/* ascending */
	roaring_bitmap_t **bitmaps; /* one per high, never NULL */
	Size		measured;		/* estimated bytes at the last size check */
	Size		unchecked;		/* most bytes added since */
	Size		next_check;		/* check again when unchecked reaches this */
	MemoryContextCallback cb;
} IdSet;

typedef struct varlena IdSetData;

#define DatumGetIdSetData(d)	((IdSetData *) PG_DETOAST_DATUM(d))
#define PG_GETARG_IDSETDATA(n)	DatumGetIdSetData(PG_GETARG_DATUM(n))

extern IdSet *IdSetCreate(void);
extern void IdSetFree(IdSet *set);
extern void IdSetAdd(IdSet *set, int64 id);
extern void IdSetAddMany(IdSet *set, const int64 *ids, int n);
extern IdSet *IdSetFromData(const IdSetData *data);
extern IdSet *IdSetFromBytes(const char *buf, Size len, bool untrusted);
extern IdSetData *IdSetToData(IdSet *set);
extern uint64 IdSetCardinality(const IdSet *set);
extern void IdSetOrInPlace(IdSet *a, const IdSet *b);
extern void IdSetAndInPlace(IdSet *a, const IdSet *b);
extern IdSetData *IdSetEmptyData(void);
extern Size IdSetMemory(const IdSet *set);

#endif							/* ECRM_IDSET_H */
