/*
 * rfm.c — ecrm.rfm_score(): the quintile score of a value against the cut
 * points of the rfm view.  In C so that a NaN or infinite value and cut
 * points that are not finite or not in ascending order fail instead of
 * scoring silently (NaN beat every cut point and scored 5).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "ecrm.h"
#include "utils/array.h"

/* rfm_score(value, cutoffs, lower_is_better): 1 + the number of cut points the value beats */
PG_FUNCTION_INFO_V1(ecrm_rfm_score);
Datum
ecrm_rfm_score(PG_FUNCTION_ARGS)
{
	ArrayType  *a;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			score = 1;
	bool		lower_is_better = !PG_ARGISNULL(2) && PG_GETARG_BOOL(2);
	double		value = PG_ARGISNULL(0) ? 0 : PG_GETARG_FLOAT8(0);

	if (!PG_ARGISNULL(0))
		EcrmCheckFinite(value, "rfm_score value");
	if (PG_ARGISNULL(1))
		PG_RETURN_INT32(1);
	a = PG_GETARG_ARRAYTYPE_P(1);
	if (ARR_NDIM(a) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rfm_score cut points must be a one-dimensional array")));
	deconstruct_array(a, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		double		c;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("rfm_score cut points must not contain nulls")));
		c = DatumGetFloat8(elems[i]);
		EcrmCheckFinite(c, "an rfm_score cut point");
		if (i > 0 && c < DatumGetFloat8(elems[i - 1]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("rfm_score cut points must be in ascending order"),
					 errdetail("Cut point %d (%g) is below cut point %d (%g).", i + 1, c, i,
							   DatumGetFloat8(elems[i - 1]))));
		/* a NULL value beats no cut point, as before: score 1 */
		if (!PG_ARGISNULL(0) && (lower_is_better ? value < c : value > c))
			score++;
	}
	PG_RETURN_INT32(score);
}
