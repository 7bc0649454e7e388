/*
 * similarity.c — string, number and date similarity for record linkage,
 * and the comparison levels of the Fellegi–Sunter model.
 *
 * Kernels work on Unicode code points (textfold.c decodes into a stack
 * buffer for short strings, so comparing two names allocates nothing):
 * Jaro, Jaro-Winkler, the unrestricted Damerau-Levenshtein distance
 * (Lowrance-Wagner) with an early exit once the distance must exceed a
 * bound, and token-set (Jaccard) similarity for multi-word fields.
 *
 * A comparison level sorts a pair of values into one of a few classes,
 * best first from the top: exact, then above each threshold, then
 * different (0); -1 when either value is missing, which the model counts as
 * no evidence at all.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "ecrm.h"
#include "matching.h"
#include "miscadmin.h"
#include "textfold.h"
#include "utils/array.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/float.h"
#include "utils/lsyscache.h"

/* Damerau-Levenshtein keeps a full matrix: bound its side. */
#define ECRM_MAX_DL_CHARS 2000

/*
 * Jaro similarity of two code-point strings: 1 for equal strings (and for
 * two empty ones), 0 when nothing matches.
 */
double
EcrmJaro(const pg_wchar *a, int la, const pg_wchar *b, int lb)
{
	bool		sa[ECRM_CP_STACK];
	bool		sb[ECRM_CP_STACK];
	bool	   *ma = sa;
	bool	   *mb = sb;
	int			window;
	int			m = 0;
	int			t = 0;
	int			k = 0;
	double		r;

	if (la == 0 && lb == 0)
		return 1.0;
	if (la == 0 || lb == 0)
		return 0.0;
	window = Max(la, lb) / 2 - 1;
	if (window < 0)
		window = 0;
	if (la > ECRM_CP_STACK)
		ma = palloc0(la);
	else
		memset(ma, 0, la);
	if (lb > ECRM_CP_STACK)
		mb = palloc0(lb);
	else
		memset(mb, 0, lb);

	for (int i = 0; i < la; i++)
	{
		int			lo = Max(0, i - window);
		int			hi = Min(lb - 1, i + window);
		pg_wchar	c = a[i];

		if ((i & 1023) == 1023)
			CHECK_FOR_INTERRUPTS();
		for (int j = lo; j <= hi; j++)
		{
			if (!mb[j] && b[j] == c)
			{
				ma[i] = mb[j] = true;
				m++;
				break;
			}
		}
	}
	if (m == 0)
		r = 0.0;
	else
	{
		for (int i = 0; i < la; i++)
		{
			if (!ma[i])
				continue;
			while (!mb[k])
				k++;
			if (a[i] != b[k])
				t++;
			k++;
		}
		r = ((double) m / la + (double) m / lb + (double) (m - t / 2) / m) / 3.0;
	}
	if (ma != sa)
		pfree(ma);
	if (mb != sb)
		pfree(mb);
	return r;
}

/*
 * Jaro-Winkler: Jaro raised for a common prefix of up to 4 characters,
 * when Jaro is above 0.7 (Winkler's boost threshold).
 */
double
EcrmJaroWinkler(const pg_wchar *a, int la, const pg_wchar *b, int lb, double prefix_scale)
{
	double		j = EcrmJaro(a, la, b, lb);
	int			l = 0;

	if (j <= 0.7)
		return j;
	while (l < 4 && l < la && l < lb && a[l] == b[l])
		l++;
	return j + l * prefix_scale * (1.0 - j);
}

static int
CompareWchar(const void *x, const void *y)
{
	pg_wchar	a = *(const pg_wchar *) x;
	pg_wchar	b = *(const pg_wchar *) y;

	return (a > b) - (a < b);
}

/*
 * Distance 0, 1 or 2 (meaning "more than one") in one pass, for the common
 * bound of one edit: one substitution, insertion, deletion or adjacent
 * transposition.
 */
static int
WithinOneEdit(const pg_wchar *a, int la, const pg_wchar *b, int lb)
{
	int			i = 0;

	if (la < lb)
	{
		const pg_wchar *t = a;

		a = b;
		b = t;
		i = la;
		la = lb;
		lb = i;
		i = 0;
	}
	if (la - lb > 1)
		return 2;
	while (i < lb && a[i] == b[i])
		i++;
	if (i == la)
		return 0;
	if (la == lb)
	{
		/* one substitution, or two neighbours swapped */
		if (memcmp(a + i + 1, b + i + 1, sizeof(pg_wchar) * (la - i - 1)) == 0)
			return 1;
		if (i + 1 < la && a[i] == b[i + 1] && a[i + 1] == b[i] &&
			memcmp(a + i + 2, b + i + 2, sizeof(pg_wchar) * (la - i - 2)) == 0)
			return 1;
		return 2;
	}
	/* a is one longer: drop its character i */
	return memcmp(a + i + 1, b + i, sizeof(pg_wchar) * (lb - i)) == 0 ? 1 : 2;
}

/* Matrix side (with the two border rows) that still fits on the stack. */
#define DL_STACK_SIDE 66

/*
 * The bounded distance, min(distance, max_distance + 1), on the diagonal
 * band |i - j| <= max_distance only (see EcrmDamerauLevenshtein).  A
 * transposition that fits the bound reaches back fewer than max_distance
 * rows and columns, so the last row holding a character is found by a short
 * scan back instead of a table over the alphabet.  Row 0 and column 0 are
 * read only within the band.
 */
static int
BandedDamerauLevenshtein(const pg_wchar *a, int la, const pg_wchar *b, int lb, int max_distance)
{
	int			stack_d[DL_STACK_SIDE * DL_STACK_SIDE];
	int			cols = lb + 1;
	int			over = max_distance + 1;	/* stands for every value beyond the bound */
	int		   *d;
	int			result = -1;

#define B(i, j) d[(i) * cols + (j)]

	if ((la + 1) * (lb + 1) <= (int) lengthof(stack_d))
		d = stack_d;
	else
		d = palloc(mul_size(mul_size(la + 1, lb + 1), sizeof(int)));
	for (int j = 0; j <= Min(lb, over); j++)
		B(0, j) = j;
	for (int i = 1; i <= Min(la, over); i++)
		B(i, 0) = i;

	for (int i = 1; i <= la; i++)
	{
		pg_wchar	ca = a[i - 1];
		int			lo = Max(1, i - max_distance);
		int			hi = Min(lb, i + max_distance);
		int			rowmin = (lo == 1) ? B(i, 0) : over;
		int			db = 0;

		if ((i & 255) == 255)
			CHECK_FOR_INTERRUPTS();
		/* the cells just outside the band, read by this row and the next */
		if (lo > 1)
			B(i, lo - 1) = over;
		if (hi < lb)
			B(i, hi + 1) = over;
		/* the last column of this row's character left of the band that a transposition could use */
		for (int j = Max(1, lo - max_distance); j < lo; j++)
			if (b[j - 1] == ca)
				db = j;
		for (int j = lo; j <= hi; j++)
		{
			int			v;

			if (ca == b[j - 1])
			{
				/* a match: nothing beats the diagonal */
				v = B(i - 1, j - 1);
				db = j;
			}
			else
			{
				v = Min(B(i - 1, j - 1), B(i, j - 1));
				v = Min(v, B(i - 1, j)) + 1;
				if (db > 0 && (j - db - 1) < max_distance)
				{
					int			k = i - 1;
					int			kmin = Max(1, i - max_distance);

					while (k >= kmin && a[k - 1] != b[j - 1])
						k--;
					if (k >= kmin && (i - k - 1) + (j - db - 1) < max_distance &&
						abs(k - db) <= max_distance)
						v = Min(v, B(k - 1, db - 1) + (i - k - 1) + 1 + (j - db - 1));
				}
				if (v > over)
					v = over;
			}
			B(i, j) = v;
			if (v < rowmin)
				rowmin = v;
		}
		if (rowmin > max_distance)
		{
			result = over;
			break;
		}
	}
	if (result < 0)
		result = Min(B(la, lb), over);
#undef B
	if (d != stack_d)
		pfree(d);
	return result;
}

/*
 * Unrestricted Damerau-Levenshtein distance (insertions, deletions,
 * substitutions and transpositions of adjacent characters, which may be
 * edited again), by Lowrance and Wagner's algorithm.  With max_distance >= 0
 * it returns max_distance + 1 whenever the distance is larger.
 *
 * The fast paths, each exact (test/sql/damerau_reference.sql compares them
 * with a plain implementation on random pairs):
 * - a common prefix and suffix are dropped first: an optimal edit sequence
 *   never needs to touch them;
 * - a bound of one edit is one pass (WithinOneEdit);
 * - with a larger bound, only the diagonal band |i - j| <= bound is
 *   computed (a cell outside it is at least |i - j|, so more than the
 *   bound), a transposition is only tried when its own cost is within the
 *   bound, and the rows stop as soon as a whole row exceeds the bound: the
 *   minimum of a row never decreases (it grows by at most one per row, and
 *   a transposition reaching back k rows costs at least k), so the result
 *   must exceed it too (BandedDamerauLevenshtein);
 * - without a bound, a matching character takes the diagonal, a
 *   transposition is looked at only when both characters were seen before,
 *   and short strings map characters to the "last row seen" table directly
 *   (ASCII) or by a scan of the few others, with the matrix on the stack.
 */
int
EcrmDamerauLevenshtein(const pg_wchar *a, int la, const pg_wchar *b, int lb, int max_distance)
{
	int			stack_d[DL_STACK_SIDE * DL_STACK_SIDE];
	pg_wchar	stack_alpha[2 * ECRM_CP_STACK];
	int			stack_i[2 * ECRM_CP_STACK];
	int			stack_da[128 + 2 * ECRM_CP_STACK];
	int		   *d;
	int			cols;
	int			inf;
	pg_wchar   *alpha = stack_alpha;
	int			nalpha = 0;
	int		   *ia = stack_i;
	int		   *ib;
	int		   *da = stack_da;
	bool		small;
	int			result;

#define D(i, j) d[((i) + 1) * cols + (j) + 1]

	if (max_distance >= 0 && abs(la - lb) > max_distance)
		return max_distance + 1;
	while (la > 0 && lb > 0 && a[0] == b[0])
	{
		a++;
		b++;
		la--;
		lb--;
	}
	while (la > 0 && lb > 0 && a[la - 1] == b[lb - 1])
	{
		la--;
		lb--;
	}
	/* the length difference, within the bound (checked above) */
	if (la == 0 || lb == 0)
		return Max(la, lb);
	if (max_distance == 0 || max_distance == 1)
		return Min(WithinOneEdit(a, la, b, lb), max_distance + 1);
	if (max_distance >= 0 && max_distance < Max(la, lb))
		return BandedDamerauLevenshtein(a, la, b, lb, max_distance);
	/* unbounded, or a bound the distance cannot exceed */

	cols = lb + 2;
	inf = la + lb + 1;
	small = (la + lb <= 2 * ECRM_CP_STACK);

	/*
	 * Map each character to a small index for the "last row seen" table:
	 * ASCII to itself, the other characters of short strings by a scan of
	 * the few distinct ones, those of long strings by sorting.
	 */
	if (small)
	{
		ib = stack_i + la;
		for (int k = 0; k < la + lb; k++)
		{
			pg_wchar	c = (k < la) ? a[k] : b[k - la];
			int			x;

			if (c < 128)
				x = c;
			else
			{
				x = 0;
				while (x < nalpha && alpha[x] != c)
					x++;
				if (x == nalpha)
					alpha[nalpha++] = c;
				x += 128;
			}
			stack_i[k] = x;
			da[x] = 0;
		}
	}
	else
	{
		alpha = palloc(sizeof(pg_wchar) * (la + lb));
		memcpy(alpha, a, sizeof(pg_wchar) * la);
		memcpy(alpha + la, b, sizeof(pg_wchar) * lb);
		qsort(alpha, la + lb, sizeof(pg_wchar), CompareWchar);
		for (int i = 0; i < la + lb; i++)
			if (nalpha == 0 || alpha[nalpha - 1] != alpha[i])
				alpha[nalpha++] = alpha[i];
		ia = palloc(sizeof(int) * la);
		ib = palloc(sizeof(int) * lb);
		for (int i = 0; i < la; i++)
			ia[i] = (pg_wchar *) bsearch(&a[i], alpha, nalpha, sizeof(pg_wchar), CompareWchar) - alpha;
		for (int j = 0; j < lb; j++)
			ib[j] = (pg_wchar *) bsearch(&b[j], alpha, nalpha, sizeof(pg_wchar), CompareWchar) - alpha;
		da = palloc0(sizeof(int) * nalpha);
	}

	if (la + 2 <= DL_STACK_SIDE && lb + 2 <= DL_STACK_SIDE)
		d = stack_d;
	else
		d = palloc(mul_size(mul_size(la + 2, lb + 2), sizeof(int)));

	D(-1, -1) = inf;
	for (int i = 0; i <= la; i++)
	{
		D(i, -1) = inf;
		D(i, 0) = i;
	}
	for (int j = 0; j <= lb; j++)
	{
		D(-1, j) = inf;
		D(0, j) = j;
	}
	for (int i = 1; i <= la; i++)
	{
		int			db = 0;
		int			ca = ia[i - 1];
		const int  *up = &D(i - 1, 0);
		int		   *row = &D(i, 0);
		int			left = row[0];

		if ((i & 255) == 255)
			CHECK_FOR_INTERRUPTS();
		for (int j = 1; j <= lb; j++)
		{
			int			cb = ib[j - 1];
			int			v;

			if (ca == cb)
			{
				/* a match: nothing beats the diagonal */
				v = up[j - 1];
				db = j;
			}
			else
			{
				int			k = da[cb];

				v = Min(up[j - 1], left);
				v = Min(v, up[j]) + 1;
				/* a transposition needs both characters seen before */
				if (k > 0 && db > 0)
					v = Min(v, D(k - 1, db - 1) + (i - k - 1) + 1 + (j - db - 1));
			}
			row[j] = left = v;
		}
		da[ca] = i;
	}
	result = D(la, lb);
#undef D
	if (d != stack_d)
		pfree(d);
	if (!small)
	{
		pfree(alpha);
		pfree(ia);
		pfree(ib);
		pfree(da);
	}
	return result;
}

/* Sorted distinct words (runs of letters and digits) of folded text. */
typedef struct Word
{
	const pg_wchar *p;
	int			len;
} Word;

static int
CompareWord(const void *x, const void *y)
{
	const Word *a = x;
	const Word *b = y;
	int			n = Min(a->len, b->len);

	for (int i = 0; i < n; i++)
		if (a->p[i] != b->p[i])
			return (a->p[i] > b->p[i]) ? 1 : -1;
	return (a->len > b->len) - (a->len < b->len);
}

static Word *
Words(const char *s, int len, int *nwords)
{
	int			n;
	pg_wchar   *cp = EcrmFoldString(s, len, &n);
	Word	   *w = palloc(sizeof(Word) * (n / 2 + 1));
	int			nw = 0;
	int			k = 0;

	for (int i = 0; i <= n; i++)
	{
		if (i < n && EcrmIsWordChar(cp[i]))
			continue;
		if (i > k)
		{
			w[nw].p = cp + k;
			w[nw].len = i - k;
			nw++;
		}
		k = i + 1;
	}
	if (nw > 1)
	{
		int			u = 1;

		qsort(w, nw, sizeof(Word), CompareWord);
		for (int i = 1; i < nw; i++)
			if (CompareWord(&w[i], &w[u - 1]) != 0)
				w[u++] = w[i];
		nw = u;
	}
	*nwords = nw;
	return w;
}

/* Jaccard similarity of the word sets of two texts (case and accents folded). */
static double
TokenSetSimilarity(const char *a, int la, const char *b, int lb)
{
	int			na,
				nb;
	Word	   *wa = Words(a, la, &na);
	Word	   *wb = Words(b, lb, &nb);
	int			i = 0,
				j = 0,
				inter = 0;

	if (na == 0 && nb == 0)
		return 1.0;
	if (na == 0 || nb == 0)
		return 0.0;
	while (i < na && j < nb)
	{
		int			c = CompareWord(&wa[i], &wb[j]);

		if (c == 0)
		{
			inter++;
			i++;
			j++;
		}
		else if (c < 0)
			i++;
		else
			j++;
	}
	return (double) inter / (na + nb - inter);
}

static double
GetPrefixScale(FunctionCallInfo fcinfo, int argno)
{
	double		p = (PG_NARGS() > argno) ? PG_GETARG_FLOAT8(argno) : 0.1;

	if (!(p >= 0.0 && p <= 0.25))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("prefix_scale must be between 0 and 0.25, not %g", p),
				 errdetail("With up to 4 prefix characters a larger scale would give similarities above 1.")));
	return p;
}

/* Jaro similarity of two strings (0 to 1). */
PG_FUNCTION_INFO_V1(ecrm_jaro);
Datum
ecrm_jaro(PG_FUNCTION_ARGS)
{
	text	   *a = PG_GETARG_TEXT_PP(0);
	text	   *b = PG_GETARG_TEXT_PP(1);
	EcrmCodepoints ca,
				cb;
	double		r;

	EcrmDecode(VARDATA_ANY(a), VARSIZE_ANY_EXHDR(a), &ca, ECRM_MAX_COMPARE_CHARS, "first string");
	EcrmDecode(VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b), &cb, ECRM_MAX_COMPARE_CHARS, "second string");
	r = EcrmJaro(ca.cp, ca.len, cb.cp, cb.len);
	EcrmCodepointsFree(&ca);
	EcrmCodepointsFree(&cb);
	PG_RETURN_FLOAT8(r);
}

/* Jaro-Winkler similarity of two strings (0 to 1). */
PG_FUNCTION_INFO_V1(ecrm_jaro_winkler);
Datum
ecrm_jaro_winkler(PG_FUNCTION_ARGS)
{
	text	   *a = PG_GETARG_TEXT_PP(0);
	text	   *b = PG_GETARG_TEXT_PP(1);
	double		p = GetPrefixScale(fcinfo, 2);
	EcrmCodepoints ca,
				cb;
	double		r;

	EcrmDecode(VARDATA_ANY(a), VARSIZE_ANY_EXHDR(a), &ca, ECRM_MAX_COMPARE_CHARS, "first string");
	EcrmDecode(VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b), &cb, ECRM_MAX_COMPARE_CHARS, "second string");
	r = EcrmJaroWinkler(ca.cp, ca.len, cb.cp, cb.len, p);
	EcrmCodepointsFree(&ca);
	EcrmCodepointsFree(&cb);
	PG_RETURN_FLOAT8(r);
}

/* Damerau-Levenshtein distance; with a bound, bound + 1 once it is exceeded. */
PG_FUNCTION_INFO_V1(ecrm_damerau_levenshtein);
Datum
ecrm_damerau_levenshtein(PG_FUNCTION_ARGS)
{
	text	   *a = PG_GETARG_TEXT_PP(0);
	text	   *b = PG_GETARG_TEXT_PP(1);
	int			max_distance = -1;
	EcrmCodepoints ca,
				cb;
	int			r;

	if (PG_NARGS() > 2)
	{
		max_distance = PG_GETARG_INT32(2);
		if (max_distance < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("max_distance must not be negative, not %d", max_distance)));
	}
	/* equal strings need no decoding (within the limit, which long ones must still hit) */
	if (VARSIZE_ANY_EXHDR(a) == VARSIZE_ANY_EXHDR(b) && VARSIZE_ANY_EXHDR(a) <= ECRM_MAX_DL_CHARS &&
		memcmp(VARDATA_ANY(a), VARDATA_ANY(b), VARSIZE_ANY_EXHDR(a)) == 0)
		PG_RETURN_INT32(0);
	EcrmDecode(VARDATA_ANY(a), VARSIZE_ANY_EXHDR(a), &ca, ECRM_MAX_DL_CHARS, "first string");
	EcrmDecode(VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b), &cb, ECRM_MAX_DL_CHARS, "second string");
	r = EcrmDamerauLevenshtein(ca.cp, ca.len, cb.cp, cb.len, max_distance);
	EcrmCodepointsFree(&ca);
	EcrmCodepointsFree(&cb);
	PG_RETURN_INT32(r);
}

/* Jaccard similarity of the word sets of two texts (0 to 1). */
PG_FUNCTION_INFO_V1(ecrm_token_set_similarity);
Datum
ecrm_token_set_similarity(PG_FUNCTION_ARGS)
{
	text	   *a = PG_GETARG_TEXT_PP(0);
	text	   *b = PG_GETARG_TEXT_PP(1);

	EcrmCheckFieldLength(a, "first text");
	EcrmCheckFieldLength(b, "second text");
	PG_RETURN_FLOAT8(TokenSetSimilarity(VARDATA_ANY(a), VARSIZE_ANY_EXHDR(a),
										VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b)));
}

static double
Closeness(double diff, double max_difference)
{
	if (diff == 0.0)
		return 1.0;
	if (isnan(diff) || diff >= max_difference)
		return 0.0;
	return 1.0 - diff / max_difference;
}

/* 1 for equal numbers, falling linearly to 0 at max_difference apart. */
PG_FUNCTION_INFO_V1(ecrm_numeric_closeness);
Datum
ecrm_numeric_closeness(PG_FUNCTION_ARGS)
{
	float8		a = PG_GETARG_FLOAT8(0);
	float8		b = PG_GETARG_FLOAT8(1);
	float8		max_difference = PG_GETARG_FLOAT8(2);

	if (!(max_difference > 0.0) || isinf(max_difference))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_difference must be a positive finite number, not %g", max_difference)));
	if (isnan(a) || isnan(b))
		PG_RETURN_NULL();
	if (a == b)
		PG_RETURN_FLOAT8(1.0);
	PG_RETURN_FLOAT8(Closeness(fabs(a - b), max_difference));
}

/* 1 for the same day, falling linearly to 0 at max_days apart. */
PG_FUNCTION_INFO_V1(ecrm_date_closeness);
Datum
ecrm_date_closeness(PG_FUNCTION_ARGS)
{
	DateADT		a = PG_GETARG_DATEADT(0);
	DateADT		b = PG_GETARG_DATEADT(1);
	int32		max_days = PG_GETARG_INT32(2);

	if (max_days < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_days must be at least 1, not %d", max_days)));
	if (a == b)
		PG_RETURN_FLOAT8(1.0);
	if (DATE_NOT_FINITE(a) || DATE_NOT_FINITE(b))
		PG_RETURN_FLOAT8(0.0);
	PG_RETURN_FLOAT8(Closeness(fabs((double) a - (double) b), max_days));
}

/*
 * Comparison levels.
 */
typedef enum CompareKind
{
	CK_EXACT,
	CK_JARO_WINKLER,
	CK_JARO,
	CK_DAMERAU_LEVENSHTEIN,
	CK_TOKEN_SET,
	CK_NUMERIC,
	CK_DATE
} CompareKind;

static const char *const kind_names[] = {
	"exact", "jaro_winkler", "jaro", "damerau_levenshtein", "token_set", "numeric", "date"
};

#define ECRM_MAX_THRESHOLDS 8

typedef struct CompareSpec
{
	CompareKind kind;
	int			nthresholds;
	double		thresholds[ECRM_MAX_THRESHOLDS];
	int			nlevels;
} CompareSpec;

/* Similarity kinds take descending thresholds in (0, 1]; the others ascending positive ones. */
static bool
IsSimilarityKind(CompareKind k)
{
	return k == CK_JARO_WINKLER || k == CK_JARO || k == CK_TOKEN_SET;
}

static void
ParseSpec(text *kind, ArrayType *thresholds, CompareSpec *spec)
{
	char	   *k = text_to_cstring(kind);
	int			found = -1;
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	for (int i = 0; i < (int) lengthof(kind_names); i++)
		if (strcmp(k, kind_names[i]) == 0)
			found = i;
	if (found < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown comparison kind \"%s\"", k),
				 errhint("Use exact, jaro_winkler, jaro, damerau_levenshtein, token_set, numeric or date.")));
	spec->kind = (CompareKind) found;

	n = 0;
	if (thresholds != NULL)
	{
		if (ARR_NDIM(thresholds) > 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("thresholds must be a one-dimensional array")));
		deconstruct_array(thresholds, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
						  &elems, &nulls, &n);
		if (n > ECRM_MAX_THRESHOLDS)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("a comparison has at most %d thresholds, not %d", ECRM_MAX_THRESHOLDS, n)));
		for (int i = 0; i < n; i++)
		{
			double		t;

			if (nulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("thresholds must not contain nulls")));
			t = DatumGetFloat8(elems[i]);
			if (IsSimilarityKind(spec->kind))
			{
				if (!(t > 0.0 && t <= 1.0) || (i > 0 && !(t < spec->thresholds[i - 1])))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("thresholds of a %s comparison must be similarities in (0, 1] in descending order", k),
							 errdetail("Threshold %d is %g.", i + 1, t)));
			}
			else if (spec->kind == CK_EXACT)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("an exact comparison takes no thresholds")));
			else
			{
				if (!(t > 0.0) || isinf(t) || (i > 0 && !(t > spec->thresholds[i - 1])) ||
					(spec->kind != CK_NUMERIC && t != floor(t)) ||
					(spec->kind == CK_DAMERAU_LEVENSHTEIN && t > ECRM_MAX_DL_CHARS) ||
					(spec->kind == CK_DATE && t > 3660000))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("thresholds of a %s comparison must be positive %s in ascending order", k,
									spec->kind == CK_NUMERIC ? "differences" :
									spec->kind == CK_DATE ? "whole numbers of days" : "whole edit distances"),
							 errdetail("Threshold %d is %g.", i + 1, t)));
			}
			spec->thresholds[i] = t;
		}
	}
	spec->nthresholds = n;
	spec->nlevels = (spec->kind == CK_EXACT) ? 2 : (spec->kind == CK_DATE) ? n + 3 : n + 2;
}

static bool
IsBlank(const char *s, int len)
{
	for (int i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
			return false;
	return true;
}

static bool
ParseNumber(const char *s, int len, double *v)
{
	char		buf[64];
	char	   *end;

	if (len >= (int) sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	errno = 0;
	*v = strtod(buf, &end);
	while (*end == ' ')
		end++;
	return end != buf && *end == '\0' && errno == 0 && !isnan(*v);
}

/* Level of similarity s (or distance) against the thresholds; exact is handled by the caller. */
static int
LevelOf(const CompareSpec *spec, double v)
{
	int			n = spec->nthresholds;

	for (int i = 0; i < n; i++)
	{
		bool		pass = IsSimilarityKind(spec->kind) ? v >= spec->thresholds[i] : v <= spec->thresholds[i];

		if (pass)
			return n - i;
	}
	return 0;
}

/* Level of a pair of non-null texts. */
static int
TextLevel(const CompareSpec *spec, const char *a, int la, const char *b, int lb)
{
	int			n = spec->nthresholds;

	if (IsBlank(a, la) || IsBlank(b, lb))
		return -1;
	switch (spec->kind)
	{
		case CK_NUMERIC:
			{
				double		x,
							y;

				if (!ParseNumber(a, la, &x) || !ParseNumber(b, lb, &y))
					return -1;
				if (x == y)
					return n + 1;
				return LevelOf(spec, fabs(x - y));
			}
		case CK_DATE:
			{
				int			x = EcrmParseDateJulian(a, la);
				int			y = EcrmParseDateJulian(b, lb);
				int			ya,
							ma,
							da,
							yb,
							mb,
							db;
				pg_wchar	sa[8],
							sb[8];
				int			diff = 0;

				if (x < 0 || y < 0)
					return -1;
				if (x == y)
					return n + 2;
				/* a typo: one digit wrong, two swapped, or day and month swapped */
				j2date(x, &ya, &ma, &da);
				j2date(y, &yb, &mb, &db);
				if (ya == yb && ma == db && da == mb)
					return n + 1;
				if (ya >= 1000 && ya <= 9999 && yb >= 1000 && yb <= 9999)
				{
					int			va = ya * 10000 + ma * 100 + da;
					int			vb = yb * 10000 + mb * 100 + db;

					for (int i = 7; i >= 0; i--)
					{
						sa[i] = '0' + va % 10;
						sb[i] = '0' + vb % 10;
						va /= 10;
						vb /= 10;
					}
					if (EcrmDamerauLevenshtein(sa, 8, sb, 8, 1) <= 1)
						return n + 1;
				}
				diff = abs(x - y);
				return LevelOf(spec, diff);
			}
		default:
			break;
	}

	if (la == lb && memcmp(a, b, la) == 0)
		return spec->nlevels - 1;
	if (spec->kind == CK_EXACT)
		return 0;
	if (spec->kind == CK_TOKEN_SET)
		return LevelOf(spec, TokenSetSimilarity(a, la, b, lb));
	{
		EcrmCodepoints ca,
					cb;
		int			lev;

		EcrmDecode(a, la, &ca, spec->kind == CK_DAMERAU_LEVENSHTEIN ? ECRM_MAX_DL_CHARS : ECRM_MAX_COMPARE_CHARS,
				   "first value");
		EcrmDecode(b, lb, &cb, spec->kind == CK_DAMERAU_LEVENSHTEIN ? ECRM_MAX_DL_CHARS : ECRM_MAX_COMPARE_CHARS,
				   "second value");
		if (spec->kind == CK_DAMERAU_LEVENSHTEIN)
			lev = LevelOf(spec, EcrmDamerauLevenshtein(ca.cp, ca.len, cb.cp, cb.len,
													   (int) spec->thresholds[n - 1]));
		else if (spec->kind == CK_JARO)
			lev = LevelOf(spec, EcrmJaro(ca.cp, ca.len, cb.cp, cb.len));
		else
			lev = LevelOf(spec, EcrmJaroWinkler(ca.cp, ca.len, cb.cp, cb.len, 0.1));
		EcrmCodepointsFree(&ca);
		EcrmCodepointsFree(&cb);
		return lev;
	}
}

/*
 * The parsed kind and thresholds, cached across calls when both arguments
 * are constants of the query (the usual case: one call per candidate pair).
 */
/*
 * The parsed kind and thresholds, cached in fn_extra when both arguments are
 * constants of the query (the usual case: one call per candidate pair).
 */
typedef struct SpecCache
{
	bool		stable;
	bool		parsed;
	CompareSpec spec;
} SpecCache;

static const CompareSpec *
GetSpec(FunctionCallInfo fcinfo, CompareSpec *local)
{
	SpecCache  *cache = fcinfo->flinfo ? (SpecCache *) fcinfo->flinfo->fn_extra : NULL;
	CompareSpec *spec = local;

	if (cache != NULL && cache->parsed)
		return &cache->spec;
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("comparison kind must not be null")));
	if (fcinfo->flinfo != NULL && cache == NULL)
	{
		cache = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(SpecCache));
		cache->stable = get_fn_expr_arg_stable(fcinfo->flinfo, 2) &&
			(PG_NARGS() < 4 || get_fn_expr_arg_stable(fcinfo->flinfo, 3));
		fcinfo->flinfo->fn_extra = cache;
	}
	if (cache != NULL && cache->stable)
		spec = &cache->spec;
	ParseSpec(PG_GETARG_TEXT_PP(2),
			  (PG_NARGS() > 3 && !PG_ARGISNULL(3)) ? PG_GETARG_ARRAYTYPE_P(3) : NULL, spec);
	if (spec->kind == CK_DAMERAU_LEVENSHTEIN && spec->nthresholds == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a damerau_levenshtein comparison needs at least one distance threshold")));
	if (cache != NULL && cache->stable)
		cache->parsed = true;
	return spec;
}

/* Comparison level of two texts: -1 missing, 0 different, up to nlevels - 1 exact. */
PG_FUNCTION_INFO_V1(ecrm_comparison_level);
Datum
ecrm_comparison_level(PG_FUNCTION_ARGS)
{
	CompareSpec local;
	const CompareSpec *spec = GetSpec(fcinfo, &local);
	text	   *a,
			   *b;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_INT16(-1);
	a = PG_GETARG_TEXT_PP(0);
	b = PG_GETARG_TEXT_PP(1);
	EcrmCheckFieldLength(a, "first value");
	EcrmCheckFieldLength(b, "second value");
	PG_RETURN_INT16(TextLevel(spec, VARDATA_ANY(a), VARSIZE_ANY_EXHDR(a),
							  VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b)));
}

/* Comparison level of two dates (kinds exact and date). */
PG_FUNCTION_INFO_V1(ecrm_comparison_level_date);
Datum
ecrm_comparison_level_date(PG_FUNCTION_ARGS)
{
	CompareSpec local;
	const CompareSpec *spec = GetSpec(fcinfo, &local);
	DateADT		a,
				b;
	char		sa[16],
				sb[16];
	int			y,
				m,
				d;

	if (spec->kind != CK_DATE && spec->kind != CK_EXACT)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dates are compared with kind date or exact, not %s", kind_names[spec->kind])));
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_INT16(-1);
	a = PG_GETARG_DATEADT(0);
	b = PG_GETARG_DATEADT(1);
	if (a == b)
		PG_RETURN_INT16(spec->nlevels - 1);
	if (spec->kind == CK_EXACT || DATE_NOT_FINITE(a) || DATE_NOT_FINITE(b))
		PG_RETURN_INT16(0);
	j2date(a + POSTGRES_EPOCH_JDATE, &y, &m, &d);
	snprintf(sa, sizeof(sa), "%04d-%02d-%02d", y, m, d);
	j2date(b + POSTGRES_EPOCH_JDATE, &y, &m, &d);
	snprintf(sb, sizeof(sb), "%04d-%02d-%02d", y, m, d);
	if (a + POSTGRES_EPOCH_JDATE < 0 || b + POSTGRES_EPOCH_JDATE < 0 ||
		strlen(sa) != 10 || strlen(sb) != 10)
		PG_RETURN_INT16(LevelOf(spec, fabs((double) a - (double) b)));
	PG_RETURN_INT16(TextLevel(spec, sa, 10, sb, 10));
}

/* Comparison level of two numbers (kinds exact and numeric). */
PG_FUNCTION_INFO_V1(ecrm_comparison_level_float8);
Datum
ecrm_comparison_level_float8(PG_FUNCTION_ARGS)
{
	CompareSpec local;
	const CompareSpec *spec = GetSpec(fcinfo, &local);
	float8		a,
				b;

	if (spec->kind != CK_NUMERIC && spec->kind != CK_EXACT)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("numbers are compared with kind numeric or exact, not %s", kind_names[spec->kind])));
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_INT16(-1);
	a = PG_GETARG_FLOAT8(0);
	b = PG_GETARG_FLOAT8(1);
	if (isnan(a) || isnan(b))
		PG_RETURN_INT16(-1);
	if (a == b)
		PG_RETURN_INT16(spec->nlevels - 1);
	if (spec->kind == CK_EXACT)
		PG_RETURN_INT16(0);
	PG_RETURN_INT16(LevelOf(spec, fabs(a - b)));
}

/* Number of levels (missing not counted) of a comparison kind with these thresholds. */
PG_FUNCTION_INFO_V1(ecrm_comparison_level_count);
Datum
ecrm_comparison_level_count(PG_FUNCTION_ARGS)
{
	CompareSpec spec;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("comparison kind must not be null")));
	ParseSpec(PG_GETARG_TEXT_PP(0), PG_ARGISNULL(1) ? NULL : PG_GETARG_ARRAYTYPE_P(1), &spec);
	if (spec.kind == CK_DAMERAU_LEVENSHTEIN && spec.nthresholds == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a damerau_levenshtein comparison needs at least one distance threshold")));
	PG_RETURN_INT32(spec.nlevels);
}
