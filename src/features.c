/*
 * features.c — turn a row of attributes (a jsonb object, such as to_jsonb of
 * a row) into the float8[] a model takes, by a feature specification:
 *
 *   {"features": [{"name": "age", "type": "numeric", "impute": 40.9},
 *                 {"name": "job", "type": "categorical", "levels": ["admin.", "blue-collar"]}]}
 *
 * A numeric attribute gives one value (true/false count as 1/0; a missing or
 * null one takes "impute", else it is an error).  A categorical attribute
 * gives one 0/1 value per level (one-hot); a missing value or a level the
 * specification does not list gives all zeros.
 */
#include "postgres.h"

#include <math.h>

#include "ecrm.h"
#include "scoring.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/memutils.h"

typedef struct FeatureDef
{
	char	   *name;
	int			namelen;
	bool		categorical;
	bool		has_impute;
	double		impute;
	int			nlevels;
	char	  **levels;
	int		   *levellen;
} FeatureDef;

typedef struct FeatureSpec
{
	Size		len;			/* the jsonb it was read from */
	char	   *bytes;
	int			nfeatures;
	int			width;			/* length of the output array */
	FeatureDef *f;
} FeatureSpec;

static void
SpecError(const char *detail, int i)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid feature specification"),
			 i > 0 ? errdetail("Feature %d: %s", i, detail) : errdetail("%s", detail),
			 errhint("A specification is {\"features\": [{\"name\": ..., \"type\": \"numeric\" or \"categorical\", ...}]}, as ecrm.feature_spec() builds it.")));
}

static char *
StringValue(JsonbValue *v, int *len)
{
	char	   *s = palloc(v->val.string.len + 1);

	memcpy(s, v->val.string.val, v->val.string.len);
	s[v->val.string.len] = '\0';
	*len = v->val.string.len;
	return s;
}

/* Read a specification (in the current memory context). */
static FeatureSpec *
ReadSpec(Jsonb *jb)
{
	FeatureSpec *spec = palloc0(sizeof(FeatureSpec));
	JsonbValue *v;
	JsonbContainer *arr;
	int			i,
				k;

	if (!JB_ROOT_IS_OBJECT(jb))
		SpecError("The specification must be a JSON object.", 0);
	v = EcrmJsonbKey(&jb->root, "features");
	if (v == NULL || v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		SpecError("It needs a \"features\" array.", 0);
	arr = v->val.binary.data;
	spec->nfeatures = JsonContainerSize(arr);
	if (spec->nfeatures == 0)
		SpecError("The \"features\" array is empty.", 0);
	if (spec->nfeatures > ECRM_MAX_FEATURES)
		SpecError("There are more than 1000 features.", 0);
	spec->f = palloc0(spec->nfeatures * sizeof(FeatureDef));
	for (i = 0; i < spec->nfeatures; i++)
	{
		JsonbValue *e = getIthJsonbValueFromContainer(arr, i);
		FeatureDef *f = &spec->f[i];
		JsonbValue *t;

		if (e == NULL || e->type != jbvBinary || !JsonContainerIsObject(e->val.binary.data))
			SpecError("it must be an object.", i + 1);
		t = EcrmJsonbKey(e->val.binary.data, "name");
		if (t == NULL || t->type != jbvString || t->val.string.len == 0 || t->val.string.len > 200)
			SpecError("\"name\" must be a string of 1 to 200 bytes.", i + 1);
		f->name = StringValue(t, &f->namelen);
		for (k = 0; k < i; k++)
			if (spec->f[k].namelen == f->namelen && memcmp(spec->f[k].name, f->name, f->namelen) == 0)
				SpecError(psprintf("the name \"%s\" appears twice.", f->name), i + 1);
		t = EcrmJsonbKey(e->val.binary.data, "type");
		if (t == NULL || t->type != jbvString)
			SpecError("\"type\" must be \"numeric\" or \"categorical\".", i + 1);
		if (t->val.string.len == 7 && memcmp(t->val.string.val, "numeric", 7) == 0)
		{
			t = EcrmJsonbKey(e->val.binary.data, "impute");
			if (t != NULL && t->type != jbvNull)
			{
				if (t->type != jbvNumeric)
					SpecError("\"impute\" must be a number.", i + 1);
				f->has_impute = true;
				if (!EcrmJsonbFloat8(t, &f->impute))
					ECRM_OUT_OF_RANGE("\"impute\" of feature \"%s\" is too large", f->name);
			}
			spec->width++;
		}
		else if (t->val.string.len == 11 && memcmp(t->val.string.val, "categorical", 11) == 0)
		{
			JsonbContainer *lv;

			f->categorical = true;
			t = EcrmJsonbKey(e->val.binary.data, "levels");
			if (t == NULL || t->type != jbvBinary || !JsonContainerIsArray(t->val.binary.data))
				SpecError("a categorical feature needs a \"levels\" array of strings.", i + 1);
			lv = t->val.binary.data;
			f->nlevels = JsonContainerSize(lv);
			if (f->nlevels == 0)
				SpecError("\"levels\" is empty.", i + 1);
			if (f->nlevels > ECRM_MAX_FEATURES)
				SpecError("\"levels\" has more than 1000 values.", i + 1);
			f->levels = palloc(f->nlevels * sizeof(char *));
			f->levellen = palloc(f->nlevels * sizeof(int));
			for (k = 0; k < f->nlevels; k++)
			{
				JsonbValue *l = getIthJsonbValueFromContainer(lv, k);

				if (l == NULL || l->type != jbvString)
					SpecError("\"levels\" must hold strings only.", i + 1);
				f->levels[k] = StringValue(l, &f->levellen[k]);
			}
			spec->width += f->nlevels;
		}
		else
			SpecError("\"type\" must be \"numeric\" or \"categorical\".", i + 1);
		if (spec->width > ECRM_MAX_FEATURES)
			SpecError("The features add up to more than 1000 values.", 0);
	}
	return spec;
}

/*
 * The specification of a jsonb argument, read once per query (fn_extra) and
 * recognised by its bytes as passed, before detoasting (see logreg.c).
 */
static FeatureSpec *
GetSpec(FunctionCallInfo fcinfo, Datum arg)
{
	FeatureSpec *spec = (FeatureSpec *) fcinfo->flinfo->fn_extra;
	struct varlena *raw = (struct varlena *) DatumGetPointer(arg);
	Size		len = VARSIZE_ANY(raw);
	MemoryContext old;
	MemoryContext cxt;
	Jsonb	   *jb;

	if (spec != NULL && spec->len == len && memcmp(spec->bytes, raw, len) == 0)
		return spec;
	if (spec != NULL)
	{
		/* each specification lives in its own context, freed when replaced */
		MemoryContextDelete(GetMemoryChunkContext(spec));
		fcinfo->flinfo->fn_extra = NULL;
	}
	jb = DatumGetJsonbP(arg);
	cxt = AllocSetContextCreate(fcinfo->flinfo->fn_mcxt, "ecrm feature spec", ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		spec = ReadSpec(jb);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(old);
		MemoryContextDelete(cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	spec->bytes = palloc(len);
	memcpy(spec->bytes, raw, len);
	spec->len = len;
	MemoryContextSwitchTo(old);
	fcinfo->flinfo->fn_extra = spec;
	return spec;
}

static const char *
ValueKindName(JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			return "null";
		case jbvString:
			return "a string";
		case jbvNumeric:
			return "a number";
		case jbvBool:
			return "a boolean";
		case jbvBinary:
			return JsonContainerIsArray(v->val.binary.data) ? "an array" : "an object";
		default:
			return "not a scalar";
	}
}

/* Encode one row of attributes by a feature specification. */
PG_FUNCTION_INFO_V1(ecrm_encode_features);
Datum
ecrm_encode_features(PG_FUNCTION_ARGS)
{
	FeatureSpec *spec = GetSpec(fcinfo, PG_GETARG_DATUM(0));
	Jsonb	   *doc = PG_GETARG_JSONB_P(1);
	Datum	   *out;
	int			i,
				k,
				pos = 0;

	if (!JB_ROOT_IS_OBJECT(doc))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("attributes must be a JSON object"),
				 errhint("Pass to_jsonb(row) or a jsonb object of attribute names and values.")));
	out = palloc(spec->width * sizeof(Datum));
	for (i = 0; i < spec->nfeatures; i++)
	{
		FeatureDef *f = &spec->f[i];
		JsonbValue	key;
		JsonbValue *v;

		key.type = jbvString;
		key.val.string.val = f->name;
		key.val.string.len = f->namelen;
		v = findJsonbValueFromContainer(&doc->root, JB_FOBJECT, &key);

		if (!f->categorical)
		{
			double		x;

			if (v == NULL || v->type == jbvNull)
			{
				if (!f->has_impute)
					ereport(ERROR,
							(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
							 errmsg("feature \"%s\" is missing", f->name),
							 errhint("Give it a value, or an \"impute\" value in the feature specification.")));
				x = f->impute;
			}
			else if (v->type == jbvNumeric)
			{
				if (!EcrmJsonbFloat8(v, &x))
					ECRM_OUT_OF_RANGE("feature \"%s\" is too large", f->name);
			}
			else if (v->type == jbvBool)
				x = v->val.boolean ? 1.0 : 0.0;
			else if (v->type == jbvString &&
					 ((v->val.string.len == 3 && memcmp(v->val.string.val, "NaN", 3) == 0) ||
					  (v->val.string.len == 8 && memcmp(v->val.string.val, "Infinity", 8) == 0) ||
					  (v->val.string.len == 9 && memcmp(v->val.string.val, "-Infinity", 9) == 0)))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("feature \"%s\" must be a finite number, not %.*s",
								f->name, v->val.string.len, v->val.string.val)));
			else
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("feature \"%s\" must be a number, not %s", f->name, ValueKindName(v))));
			if (isnan(x) || isinf(x))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("feature \"%s\" must be a finite number", f->name)));
			out[pos++] = Float8GetDatum(x);
		}
		else
		{
			const char *s = NULL;
			int			slen = 0;

			if (v != NULL && v->type == jbvString)
			{
				s = v->val.string.val;
				slen = v->val.string.len;
			}
			else if (v != NULL && v->type == jbvNumeric)
			{
				s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
				slen = strlen(s);
			}
			else if (v != NULL && v->type == jbvBool)
			{
				s = v->val.boolean ? "true" : "false";
				slen = strlen(s);
			}
			else if (v != NULL && v->type != jbvNull)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("feature \"%s\" must be a string, number or boolean, not %s", f->name, ValueKindName(v))));
			for (k = 0; k < f->nlevels; k++)
				out[pos + k] = Float8GetDatum((s != NULL && f->levellen[k] == slen &&
											   memcmp(f->levels[k], s, slen) == 0) ? 1.0 : 0.0);
			pos += f->nlevels;
		}
	}
	PG_RETURN_ARRAYTYPE_P(construct_array(out, spec->width, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}
