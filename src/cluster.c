/*
 * cluster.c — connected components of a graph given as edges, by
 * union-find, as a parallel aggregate.
 *
 *   SELECT ecrm.connected_components(l, r, probability >= 0.9) FROM pairs;
 *
 * Nodes are bigint ids; every node seen is in the result, and an edge joins
 * its two nodes when its third argument is true (or always, in the
 * two-argument form).  The result is a two-dimensional bigint array of
 * {node, component} rows ordered by node, where a component is named by its
 * smallest node, so the answer does not depend on the order of the edges.
 * ecrm.components() turns it into rows.
 *
 * State: an open-addressing hash from id to slot and a parent array (union
 * by size, path halving).  The combine function adds every node of one state
 * to the other under its root there; serialisation writes (node, root) pairs.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "ecrm.h"
#include "fmgr.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "matching.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

/* A result row takes 16 bytes, and an array must stay under 1 GB. */
#define MAX_NODES ((int) ((MaxAllocSize - 1024) / 16))

typedef struct UnionFind
{
	int			n;				/* nodes */
	int			cap;			/* slots allocated in ids/parent/size */
	int64	   *ids;
	int32	   *parent;
	int32	   *size;
	int			hcap;			/* hash slots, a power of two */
	int32	   *hash;			/* slot + 1, 0 = empty */
} UnionFind;

/* The finaliser of MurmurHash3: spreads sequential ids over the table. */
static inline uint32
HashId(int64 id)
{
	uint64		h = (uint64) id;

	h ^= h >> 33;
	h *= UINT64CONST(0xff51afd7ed558ccd);
	h ^= h >> 33;
	h *= UINT64CONST(0xc4ceb9fe1a85ec53);
	h ^= h >> 33;
	return (uint32) h;
}

static void *
AllocHuge(MemoryContext cxt, Size n)
{
	return MemoryContextAllocExtended(cxt, n, MCXT_ALLOC_HUGE);
}

static UnionFind *
UfCreate(MemoryContext cxt)
{
	UnionFind  *uf = MemoryContextAllocZero(cxt, sizeof(UnionFind));

	uf->cap = 1024;
	uf->ids = AllocHuge(cxt, sizeof(int64) * uf->cap);
	uf->parent = AllocHuge(cxt, sizeof(int32) * uf->cap);
	uf->size = AllocHuge(cxt, sizeof(int32) * uf->cap);
	uf->hcap = 2048;
	uf->hash = MemoryContextAllocExtended(cxt, sizeof(int32) * uf->hcap, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	return uf;
}

static void
UfRehash(UnionFind *uf, MemoryContext cxt)
{
	int			hcap = uf->hcap * 2;
	int32	   *h = MemoryContextAllocExtended(cxt, mul_size(sizeof(int32), hcap),
											   MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);

	for (int i = 0; i < uf->n; i++)
	{
		uint32		k = HashId(uf->ids[i]) & (hcap - 1);

		while (h[k] != 0)
			k = (k + 1) & (hcap - 1);
		h[k] = i + 1;
	}
	pfree(uf->hash);
	uf->hash = h;
	uf->hcap = hcap;
}

/* Slot of a node, added as its own component when new. */
static int
UfSlot(UnionFind *uf, int64 id, MemoryContext cxt)
{
	uint32		k = HashId(id) & (uf->hcap - 1);
	int			s;

	while (uf->hash[k] != 0)
	{
		if (uf->ids[uf->hash[k] - 1] == id)
			return uf->hash[k] - 1;
		k = (k + 1) & (uf->hcap - 1);
	}
	if (uf->n >= MAX_NODES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("connected_components can take at most %d distinct nodes", MAX_NODES)));
	if (uf->n == uf->cap)
	{
		int			cap = Min(uf->cap * 2, MAX_NODES);

		uf->ids = repalloc_huge(uf->ids, sizeof(int64) * (Size) cap);
		uf->parent = repalloc_huge(uf->parent, sizeof(int32) * (Size) cap);
		uf->size = repalloc_huge(uf->size, sizeof(int32) * (Size) cap);
		uf->cap = cap;
	}
	s = uf->n++;
	uf->ids[s] = id;
	uf->parent[s] = s;
	uf->size[s] = 1;
	uf->hash[k] = s + 1;
	/* keep the load factor under one half */
	if ((int64) uf->n * 2 > uf->hcap)
		UfRehash(uf, cxt);
	return s;
}

static inline int
UfFind(UnionFind *uf, int s)
{
	while (uf->parent[s] != s)
	{
		uf->parent[s] = uf->parent[uf->parent[s]];
		s = uf->parent[s];
	}
	return s;
}

static void
UfUnion(UnionFind *uf, int a, int b)
{
	a = UfFind(uf, a);
	b = UfFind(uf, b);
	if (a == b)
		return;
	if (uf->size[a] < uf->size[b])
	{
		int			t = a;

		a = b;
		b = t;
	}
	uf->parent[b] = a;
	uf->size[a] += uf->size[b];
}

static MemoryContext
AggContext(FunctionCallInfo fcinfo, const char *fn)
{
	MemoryContext cxt;

	if (!AggCheckCallContext(fcinfo, &cxt))
		elog(ERROR, "%s called in non-aggregate context", fn);
	return cxt;
}

/* Transition: add the edge (a, b), joining them when linked is true or absent. */
PG_FUNCTION_INFO_V1(ecrm_cc_trans);
Datum
ecrm_cc_trans(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = AggContext(fcinfo, "ecrm_cc_trans");
	UnionFind  *uf = PG_ARGISNULL(0) ? UfCreate(cxt) : (UnionFind *) PG_GETARG_POINTER(0);
	int			sa = -1,
				sb = -1;
	bool		linked = (PG_NARGS() < 4) || (!PG_ARGISNULL(3) && PG_GETARG_BOOL(3));

	if (!PG_ARGISNULL(1))
		sa = UfSlot(uf, PG_GETARG_INT64(1), cxt);
	if (!PG_ARGISNULL(2))
		sb = UfSlot(uf, PG_GETARG_INT64(2), cxt);
	if (linked && sa >= 0 && sb >= 0)
		UfUnion(uf, sa, sb);
	PG_RETURN_POINTER(uf);
}

/* Add every node of src to dst, joined to its root in src. */
static void
UfMergeInto(UnionFind *dst, UnionFind *src, MemoryContext cxt)
{
	for (int i = 0; i < src->n; i++)
	{
		int			r = UfFind(src, i);
		int			a = UfSlot(dst, src->ids[i], cxt);

		if ((i & 4095) == 4095)
			CHECK_FOR_INTERRUPTS();
		if (r != i)
			UfUnion(dst, a, UfSlot(dst, src->ids[r], cxt));
	}
}

/* Combine two partial states. */
PG_FUNCTION_INFO_V1(ecrm_cc_combine);
Datum
ecrm_cc_combine(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = AggContext(fcinfo, "ecrm_cc_combine");
	UnionFind  *a = PG_ARGISNULL(0) ? NULL : (UnionFind *) PG_GETARG_POINTER(0);
	UnionFind  *b = PG_ARGISNULL(1) ? NULL : (UnionFind *) PG_GETARG_POINTER(1);

	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	if (a == NULL)
		a = UfCreate(cxt);
	UfMergeInto(a, b, cxt);
	PG_RETURN_POINTER(a);
}

/* Serialise a state as (node, root) pairs. */
PG_FUNCTION_INFO_V1(ecrm_cc_serialize);
Datum
ecrm_cc_serialize(PG_FUNCTION_ARGS)
{
	UnionFind  *uf = (UnionFind *) PG_GETARG_POINTER(0);
	StringInfoData buf;

	AggContext(fcinfo, "ecrm_cc_serialize");
	pq_begintypsend(&buf);
	pq_sendint32(&buf, uf->n);
	for (int i = 0; i < uf->n; i++)
	{
		pq_sendint64(&buf, uf->ids[i]);
		pq_sendint64(&buf, uf->ids[UfFind(uf, i)]);
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* Rebuild a state from its serialised pairs. */
PG_FUNCTION_INFO_V1(ecrm_cc_deserialize);
Datum
ecrm_cc_deserialize(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = AggContext(fcinfo, "ecrm_cc_deserialize");
	bytea	   *b = PG_GETARG_BYTEA_PP(0);
	StringInfoData buf;
	UnionFind  *uf = UfCreate(cxt);
	int			n;

	buf.data = VARDATA_ANY(b);
	buf.len = VARSIZE_ANY_EXHDR(b);
	buf.maxlen = buf.len;
	buf.cursor = 0;
	n = pq_getmsgint(&buf, 4);
	if (n < 0 || (int64) n * 16 != buf.len - 4)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid connected_components state")));
	for (int i = 0; i < n; i++)
	{
		int64		id = pq_getmsgint64(&buf);
		int64		root = pq_getmsgint64(&buf);

		UfUnion(uf, UfSlot(uf, id, cxt), UfSlot(uf, root, cxt));
	}
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(uf);
}

static int
CompareSlotById(const void *x, const void *y, void *arg)
{
	const int64 *ids = arg;
	int64		a = ids[*(const int *) x];
	int64		b = ids[*(const int *) y];

	return (a > b) - (a < b);
}

/* Final: {node, component} rows ordered by node; component = smallest node of it. */
PG_FUNCTION_INFO_V1(ecrm_cc_final);
Datum
ecrm_cc_final(PG_FUNCTION_ARGS)
{
	UnionFind  *uf;
	int64	   *minid;
	int		   *order;
	ArrayType  *res;
	int64	   *data;
	Size		nbytes;

	AggContext(fcinfo, "ecrm_cc_final");
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	uf = (UnionFind *) PG_GETARG_POINTER(0);
	minid = palloc_extended(sizeof(int64) * (Size) Max(uf->n, 1), MCXT_ALLOC_HUGE);
	order = palloc_extended(sizeof(int) * (Size) Max(uf->n, 1), MCXT_ALLOC_HUGE);
	for (int i = 0; i < uf->n; i++)
	{
		minid[i] = PG_INT64_MAX;
		order[i] = i;
	}
	for (int i = 0; i < uf->n; i++)
	{
		int			r = UfFind(uf, i);

		if (uf->ids[i] < minid[r])
			minid[r] = uf->ids[i];
	}
	qsort_arg(order, uf->n, sizeof(int), CompareSlotById, uf->ids);

	nbytes = ARR_OVERHEAD_NONULLS(2) + sizeof(int64) * 2 * (Size) uf->n;
	res = palloc_extended(nbytes, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	SET_VARSIZE(res, nbytes);
	res->ndim = 2;
	res->dataoffset = 0;
	res->elemtype = INT8OID;
	ARR_DIMS(res)[0] = uf->n;
	ARR_DIMS(res)[1] = 2;
	ARR_LBOUND(res)[0] = 1;
	ARR_LBOUND(res)[1] = 1;
	data = (int64 *) ECRM_ARR_DATA(res);
	for (int k = 0; k < uf->n; k++)
	{
		int			i = order[k];

		data[2 * k] = uf->ids[i];
		data[2 * k + 1] = minid[UfFind(uf, i)];
	}
	PG_RETURN_ARRAYTYPE_P(res);
}

/* Rows (node, component) of a connected_components result. */
PG_FUNCTION_INFO_V1(ecrm_components);
Datum
ecrm_components(PG_FUNCTION_ARGS)
{
	ArrayType  *a = PG_GETARG_ARRAYTYPE_P(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64	   *data;
	int			n;

	if (ARR_ELEMTYPE(a) != INT8OID)
		elog(ERROR, "components expects a bigint array");
	if (ARR_NDIM(a) == 0)
		n = 0;
	else if (ARR_NDIM(a) != 2 || ARR_DIMS(a)[1] != 2 || ARR_HASNULL(a))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("components expects a connected_components result: an n x 2 bigint array without nulls")));
	else
		n = ARR_DIMS(a)[0];
	InitMaterializedSRF(fcinfo, 0);
	data = n > 0 ? (int64 *) ECRM_ARR_DATA(a) : NULL;
	for (int i = 0; i < n; i++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		if ((i & 4095) == 4095)
			CHECK_FOR_INTERRUPTS();
		values[0] = Int64GetDatum(data[2 * i]);
		values[1] = Int64GetDatum(data[2 * i + 1]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
