/*
 * idset_agg.c — aggregates that build, unite and intersect idsets.
 *
 * The transition state is an in-memory IdSet allocated in the aggregate
 * context (its bitmaps are freed when that context is reset).  Combine,
 * serialise and deserialise functions let the planner run the aggregates
 * in parallel workers and push them down to Citus shards; the serialised
 * state is the idset's own on-disk format.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "ecrm.h"
#include "idset.h"

static MemoryContext
AggContext(FunctionCallInfo fcinfo, const char *fname)
{
	MemoryContext aggcontext;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		elog(ERROR, "%s called in non-aggregate context", fname);
	return aggcontext;
}

/* A fresh empty state in the aggregate context. */
static IdSet *
NewState(MemoryContext aggcontext)
{
	MemoryContext old = MemoryContextSwitchTo(aggcontext);
	IdSet	   *set = IdSetCreate();

	MemoryContextSwitchTo(old);
	return set;
}

/* A copy of a stored idset as a state in the aggregate context. */
static IdSet *
StateFromDatum(MemoryContext aggcontext, Datum d)
{
	MemoryContext old = MemoryContextSwitchTo(aggcontext);
	IdSet	   *set;
	IdSetData  *data = DatumGetIdSetData(d);

	set = IdSetFromData(data);
	if ((Pointer) data != DatumGetPointer(d))
		pfree(data);
	MemoryContextSwitchTo(old);
	return set;
}

PG_FUNCTION_INFO_V1(ecrm_idset_build_trans);
/* idset_agg(bigint) transition: add one id (NULL ids are skipped) */
Datum
ecrm_idset_build_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext = AggContext(fcinfo, "ecrm_idset_build_trans");
	IdSet	   *state = PG_ARGISNULL(0) ? NULL : (IdSet *) PG_GETARG_POINTER(0);

	if (PG_ARGISNULL(1))
	{
		if (state == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(state);
	}
	if (state == NULL)
		state = NewState(aggcontext);
	IdSetAdd(state, PG_GETARG_INT64(1));
	PG_RETURN_POINTER(state);
}

PG_FUNCTION_INFO_V1(ecrm_idset_union_trans);
/* idset_union_agg(idset) transition: unite with one set */
Datum
ecrm_idset_union_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext = AggContext(fcinfo, "ecrm_idset_union_trans");
	IdSet	   *state = PG_ARGISNULL(0) ? NULL : (IdSet *) PG_GETARG_POINTER(0);

	if (PG_ARGISNULL(1))
	{
		if (state == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(state);
	}
	if (state == NULL)
		PG_RETURN_POINTER(StateFromDatum(aggcontext, PG_GETARG_DATUM(1)));
	else
	{
		IdSet	   *in = IdSetFromData(PG_GETARG_IDSETDATA(1));
		MemoryContext old = MemoryContextSwitchTo(aggcontext);

		IdSetOrInPlace(state, in);
		MemoryContextSwitchTo(old);
		IdSetFree(in);
	}
	PG_RETURN_POINTER(state);
}

PG_FUNCTION_INFO_V1(ecrm_idset_intersect_trans);
/* idset_intersect_agg(idset) transition: intersect with one set */
Datum
ecrm_idset_intersect_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext = AggContext(fcinfo, "ecrm_idset_intersect_trans");
	IdSet	   *state = PG_ARGISNULL(0) ? NULL : (IdSet *) PG_GETARG_POINTER(0);

	if (PG_ARGISNULL(1))
	{
		if (state == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(state);
	}
	if (state == NULL)
		PG_RETURN_POINTER(StateFromDatum(aggcontext, PG_GETARG_DATUM(1)));
	if (state->nbuckets > 0)
	{
		IdSet	   *in = IdSetFromData(PG_GETARG_IDSETDATA(1));

		IdSetAndInPlace(state, in);
		IdSetFree(in);
	}
	PG_RETURN_POINTER(state);
}

/* Combine two states with union or intersection into the first. */
static Datum
Combine(FunctionCallInfo fcinfo, bool intersect)
{
	MemoryContext aggcontext = AggContext(fcinfo, "ecrm idset combine");
	IdSet	   *s1 = PG_ARGISNULL(0) ? NULL : (IdSet *) PG_GETARG_POINTER(0);
	IdSet	   *s2 = PG_ARGISNULL(1) ? NULL : (IdSet *) PG_GETARG_POINTER(1);
	MemoryContext old;

	if (s2 == NULL)
	{
		if (s1 == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(s1);
	}
	old = MemoryContextSwitchTo(aggcontext);
	if (s1 == NULL)
	{
		s1 = IdSetCreate();
		IdSetOrInPlace(s1, s2);
	}
	else if (intersect)
		IdSetAndInPlace(s1, s2);
	else
		IdSetOrInPlace(s1, s2);
	MemoryContextSwitchTo(old);
	PG_RETURN_POINTER(s1);
}

PG_FUNCTION_INFO_V1(ecrm_idset_union_combine);
/* Combine function of idset_agg and idset_union_agg */
Datum
ecrm_idset_union_combine(PG_FUNCTION_ARGS)
{
	return Combine(fcinfo, false);
}

PG_FUNCTION_INFO_V1(ecrm_idset_intersect_combine);
/* Combine function of idset_intersect_agg */
Datum
ecrm_idset_intersect_combine(PG_FUNCTION_ARGS)
{
	return Combine(fcinfo, true);
}

PG_FUNCTION_INFO_V1(ecrm_idset_agg_final);
/* Final function: the state as an idset */
Datum
ecrm_idset_agg_final(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	PG_RETURN_POINTER(IdSetToData((IdSet *) PG_GETARG_POINTER(0)));
}

PG_FUNCTION_INFO_V1(ecrm_idset_agg_serialize);
/* Serial function: the state in the idset format, as bytea */
Datum
ecrm_idset_agg_serialize(PG_FUNCTION_ARGS)
{
	AggContext(fcinfo, "ecrm_idset_agg_serialize");
	PG_RETURN_BYTEA_P((bytea *) IdSetToData((IdSet *) PG_GETARG_POINTER(0)));
}

PG_FUNCTION_INFO_V1(ecrm_idset_agg_deserialize);
/* Deserial function: a state from the bytes a worker sent */
Datum
ecrm_idset_agg_deserialize(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext = AggContext(fcinfo, "ecrm_idset_agg_deserialize");
	bytea	   *b = PG_GETARG_BYTEA_PP(0);
	MemoryContext old = MemoryContextSwitchTo(aggcontext);
	IdSet	   *set = IdSetFromBytes(VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b), false);

	MemoryContextSwitchTo(old);
	PG_RETURN_POINTER(set);
}
