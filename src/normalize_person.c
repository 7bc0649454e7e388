/*
 * normalize_person.c — canonical forms of person names, postal addresses,
 * postal codes and dates, and the Soundex key, for matching profiles.
 *
 * Like the email and phone normalisers (normalize.c) these return NULL for
 * a value with nothing left to compare, so they run over dirty tables.
 * Folding (case, accents, ligatures) is textfold.c's.
 */
#include "postgres.h"

#include "datatype/timestamp.h"
#include "ecrm.h"
#include "matching.h"
#include "textfold.h"
#include "utils/date.h"
#include "utils/datetime.h"

typedef struct Token
{
	int			start;
	int			len;
	bool		drop;
} Token;

static inline bool
IsApostrophe(pg_wchar c)
{
	return c == '\'' || c == 0x2019 || c == 0x2018 || c == '`' || c == 0x00B4 ||
		c == 0x02BC;
}

static bool
TokenIs(const pg_wchar *cp, const Token *t, const char *word)
{
	int			n = strlen(word);

	if (t->len != n)
		return false;
	for (int i = 0; i < n; i++)
		if (cp[t->start + i] != (unsigned char) word[i])
			return false;
	return true;
}

static bool
TokenIn(const pg_wchar *cp, const Token *t, const char *const *words, int nwords)
{
	for (int i = 0; i < nwords; i++)
		if (TokenIs(cp, t, words[i]))
			return true;
	return false;
}

/*
 * Split folded code points into words: runs of letters and digits;
 * apostrophes inside a word are dropped (O'Brien -> obrien), anything else
 * separates.  Apostrophes are removed from cp in place.
 */
static Token *
Tokenize(pg_wchar *cp, int *n, int *ntokens)
{
	Token	   *tok = palloc(sizeof(Token) * (*n / 2 + 2));
	int			nt = 0;
	int			w = 0;
	bool		in_word = false;

	for (int i = 0; i < *n; i++)
	{
		pg_wchar	c = cp[i];

		if (IsApostrophe(c) && in_word)
			continue;
		if (EcrmIsWordChar(c))
		{
			if (!in_word)
			{
				tok[nt].start = w;
				tok[nt].len = 0;
				tok[nt].drop = false;
				nt++;
				in_word = true;
			}
			cp[w++] = c;
			tok[nt - 1].len++;
		}
		else
			in_word = false;
	}
	*n = w;
	*ntokens = nt;
	return tok;
}

/* Join the tokens not dropped with single spaces; NULL when none is left. */
static text *
JoinTokens(const pg_wchar *cp, const Token *tok, int nt, const char *const *replacement)
{
	pg_wchar   *out;
	int			n = 0;
	int			total = 0;

	for (int i = 0; i < nt; i++)
		total += (replacement && replacement[i]) ? (int) strlen(replacement[i]) + 1 : tok[i].len + 1;
	out = palloc(sizeof(pg_wchar) * (total + 1));
	for (int i = 0; i < nt; i++)
	{
		if (tok[i].drop)
			continue;
		if (n > 0)
			out[n++] = ' ';
		if (replacement && replacement[i])
		{
			for (const char *r = replacement[i]; *r; r++)
				out[n++] = (unsigned char) *r;
		}
		else
		{
			memcpy(out + n, cp + tok[i].start, sizeof(pg_wchar) * tok[i].len);
			n += tok[i].len;
		}
	}
	if (n == 0)
		return NULL;
	return EcrmCodepointsToText(out, n);
}

static const char *const name_titles[] = {
	"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "dame", "rev", "herr", "frau",
	"mme", "mlle", "sra", "srta", "dott"
};
static const char *const name_suffixes[] = {
	"jr", "jnr", "sr", "snr", "ii", "iii", "iv", "phd", "md", "esq"
};
static const char *const name_particles[] = {
	"van", "von", "vom", "de", "der", "den", "del", "della", "delle", "dei", "degli", "di",
	"da", "das", "dos", "do", "du", "des", "le", "la", "les", "lo", "ten", "ter", "te",
	"zu", "zum", "zur", "af", "av", "bin", "ibn", "al", "el", "y", "e"
};

static int
CountKept(const Token *tok, int nt)
{
	int			k = 0;

	for (int i = 0; i < nt; i++)
		if (!tok[i].drop)
			k++;
	return k;
}

/*
 * A person name for matching: folded, punctuation removed, leading titles
 * (Mr, Dr, ...) and trailing suffixes (Jr, III, ...) dropped, and with
 * drop_particles the particles (van, de, von, ...) too, but never the last
 * word standing.
 */
static text *
NormalizeName(const char *s, int len, bool drop_particles)
{
	int			n;
	int			nt;
	pg_wchar   *cp = EcrmFoldString(s, len, &n);
	Token	   *tok = Tokenize(cp, &n, &nt);

	for (int i = 0; i < nt - 1 && TokenIn(cp, &tok[i], name_titles, lengthof(name_titles)); i++)
		tok[i].drop = true;
	for (int i = nt - 1; i > 0 && CountKept(tok, nt) > 1 &&
		 TokenIn(cp, &tok[i], name_suffixes, lengthof(name_suffixes)); i--)
		tok[i].drop = true;
	if (drop_particles)
	{
		for (int i = 0; i < nt; i++)
			if (!tok[i].drop && CountKept(tok, nt) > 1 &&
				TokenIn(cp, &tok[i], name_particles, lengthof(name_particles)))
				tok[i].drop = true;
	}
	return JoinTokens(cp, tok, nt, NULL);
}

/* Canonical person name for matching; NULL when nothing is left. */
PG_FUNCTION_INFO_V1(ecrm_normalize_name);
Datum
ecrm_normalize_name(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	bool		drop_particles = PG_GETARG_BOOL(1);
	text	   *r;

	EcrmCheckFieldLength(t, "name");
	r = NormalizeName(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), drop_particles);
	if (r == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(r);
}

/* Lower case, accents removed, for matching; the text otherwise as it is. */
PG_FUNCTION_INFO_V1(ecrm_fold);
Datum
ecrm_fold(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	int			n;
	pg_wchar   *cp;

	EcrmCheckFieldLength(t, "text");
	cp = EcrmFoldString(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &n);
	PG_RETURN_TEXT_P(EcrmCodepointsToText(cp, n));
}

/* Street-type words, directions and unit words, and their canonical (USPS-like) form. */
static const struct
{
	const char *word;
	const char *canon;
}			address_words[] = {
	{"street", "st"}, {"str", "st"}, {"strasse", "st"}, {"saint", "st"},
	{"road", "rd"}, {"avenue", "ave"}, {"av", "ave"}, {"avn", "ave"}, {"avenida", "ave"},
	{"avda", "ave"}, {"boulevard", "blvd"}, {"boul", "blvd"}, {"bd", "blvd"},
	{"drive", "dr"}, {"drv", "dr"}, {"lane", "ln"}, {"court", "ct"}, {"crt", "ct"},
	{"place", "pl"}, {"plc", "pl"}, {"platz", "pl"}, {"square", "sq"}, {"sqr", "sq"},
	{"terrace", "tce"}, {"terr", "tce"}, {"ter", "tce"}, {"crescent", "cres"},
	{"cr", "cres"}, {"crs", "cres"}, {"cresc", "cres"}, {"highway", "hwy"},
	{"parkway", "pkwy"}, {"pky", "pkwy"}, {"circle", "cir"}, {"circ", "cir"},
	{"close", "cl"}, {"grove", "gr"}, {"gro", "gr"}, {"gardens", "gdns"}, {"gardns", "gdns"},
	{"mount", "mt"}, {"north", "n"}, {"south", "s"}, {"east", "e"}, {"west", "w"},
	{"northeast", "ne"}, {"northwest", "nw"}, {"southeast", "se"}, {"southwest", "sw"},
	{"apartment", "apt"}, {"suite", "ste"}, {"floor", "fl"}, {"flr", "fl"},
	{"building", "bldg"}, {"wy", "way"}, {"alley", "aly"}, {"center", "ctr"},
	{"centre", "ctr"}, {"heights", "hts"}, {"junction", "jct"}, {"point", "pt"},
};

/*
 * A postal address line for matching: folded, punctuation removed, street
 * types, directions and unit words abbreviated the one way ("Street", "St.",
 * "Str." and "Straße" become "st"; "Hauptstraße" becomes "hauptstr"), and
 * "No."/"Nr." before a number dropped.
 */
static text *
NormalizeAddress(const char *s, int len)
{
	int			n;
	int			nt;
	pg_wchar   *cp = EcrmFoldString(s, len, &n);
	Token	   *tok = Tokenize(cp, &n, &nt);
	const char **repl = palloc0(sizeof(char *) * (nt + 1));

	for (int i = 0; i < nt; i++)
	{
		Token	   *t = &tok[i];

		if ((TokenIs(cp, t, "no") || TokenIs(cp, t, "nr") || TokenIs(cp, t, "number")) &&
			i + 1 < nt && cp[tok[i + 1].start] >= '0' && cp[tok[i + 1].start] <= '9')
		{
			t->drop = true;
			continue;
		}
		for (int k = 0; k < (int) lengthof(address_words); k++)
			if (TokenIs(cp, t, address_words[k].word))
			{
				repl[i] = address_words[k].canon;
				break;
			}
		/* German compounds: ...strasse -> ...str */
		if (repl[i] == NULL && t->len > 7)
		{
			static const char sfx[] = "strasse";
			bool		match = true;

			for (int k = 0; k < 7; k++)
				if (cp[t->start + t->len - 7 + k] != (unsigned char) sfx[k])
					match = false;
			if (match)
				t->len -= 4;
		}
	}
	return JoinTokens(cp, tok, nt, repl);
}

/* Canonical postal address line for matching; NULL when nothing is left. */
PG_FUNCTION_INFO_V1(ecrm_normalize_address);
Datum
ecrm_normalize_address(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	text	   *r;

	EcrmCheckFieldLength(t, "address");
	r = NormalizeAddress(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	if (r == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(r);
}

/* Postal code: ASCII letters upper-cased and digits, nothing else; NULL if none. */
PG_FUNCTION_INFO_V1(ecrm_normalize_postal_code);
Datum
ecrm_normalize_postal_code(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	const char *s = VARDATA_ANY(t);
	int			len = VARSIZE_ANY_EXHDR(t);
	char		buf[33];
	int			n = 0;

	/* the longest postal codes have 10 characters; a long text is no postal code */
	if (len > 64)
		PG_RETURN_NULL();
	for (int i = 0; i < len && n < 32; i++)
	{
		unsigned char c = s[i];

		if ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z'))
			buf[n++] = c;
		else if (c >= 'a' && c <= 'z')
			buf[n++] = c - ('a' - 'A');
	}
	if (n == 0)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text_with_len(buf, n));
}

/*
 * American Soundex of the folded letters of a name: its first letter and
 * three digits ("Müller", "Mueller" -> M460).  NULL when there is no letter.
 */
static bool
Soundex(const char *s, int len, char out[5])
{
	static const char codes[26] = {
		/* a b c d e f g h i j k l m n o p q r s t u v w x y z */
		0, '1', '2', '3', 0, '1', '2', 0, 0, '2', '2', '4', '5', '5', 0, '1', '2', '6', '2', '3', 0, '1', 0, '2', 0, '2'
	};
	int			n;
	pg_wchar   *cp = EcrmFoldString(s, len, &n);
	int			o = 0;
	char		last = 0;

	for (int i = 0; i < n && o < 4; i++)
	{
		pg_wchar	c = cp[i];
		char		code;

		if (c < 'a' || c > 'z')
			continue;
		code = codes[c - 'a'];
		if (o == 0)
		{
			out[o++] = c - ('a' - 'A');
			last = code;
			continue;
		}
		if (code != 0 && code != last)
			out[o++] = code;
		/* h and w do not separate letters of one code; vowels do */
		if (c != 'h' && c != 'w')
			last = code;
	}
	pfree(cp);
	if (o == 0)
		return false;
	while (o < 4)
		out[o++] = '0';
	out[4] = '\0';
	return true;
}

/* Soundex key of a name (letters after folding); NULL when it has no letter. */
PG_FUNCTION_INFO_V1(ecrm_soundex);
Datum
ecrm_soundex(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	char		out[5];

	EcrmCheckFieldLength(t, "name");
	if (!Soundex(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), out))
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(out));
}

/*
 * Dates.  Accepted: ISO (2024-03-05, with or without a time after it),
 * YYYYMMDD, day/month/year in numbers with any separator (read in the given
 * field order, or the other way round when only that makes a valid date),
 * and month names or abbreviations in English, German, French, Spanish,
 * Italian and Dutch ("5 March 2024", "March 5th, 2024", "5. Mär 2024").
 * Two-digit years: 00-29 are 20xx, 30-99 are 19xx (a fixed pivot, so the
 * function is immutable).
 */
static const struct
{
	const char *name;
	int			month;
}			month_names[] = {
	{"january", 1}, {"jan", 1}, {"januar", 1}, {"janvier", 1}, {"janv", 1}, {"enero", 1},
	{"ene", 1}, {"gennaio", 1}, {"gen", 1}, {"januari", 1},
	{"february", 2}, {"feb", 2}, {"februar", 2}, {"fevrier", 2}, {"fev", 2}, {"febrero", 2},
	{"febbraio", 2}, {"februari", 2}, {"febr", 2},
	{"march", 3}, {"mar", 3}, {"marz", 3}, {"maerz", 3}, {"mars", 3}, {"marzo", 3}, {"maart", 3},
	{"mrt", 3},
	{"april", 4}, {"apr", 4}, {"avril", 4}, {"avr", 4}, {"abril", 4}, {"abr", 4}, {"aprile", 4},
	{"may", 5}, {"mai", 5}, {"mayo", 5}, {"maggio", 5}, {"mag", 5}, {"mei", 5},
	{"june", 6}, {"jun", 6}, {"juni", 6}, {"juin", 6}, {"junio", 6}, {"giugno", 6}, {"giu", 6},
	{"july", 7}, {"jul", 7}, {"juli", 7}, {"juillet", 7}, {"juil", 7}, {"julio", 7},
	{"luglio", 7}, {"lug", 7},
	{"august", 8}, {"aug", 8}, {"aout", 8}, {"agosto", 8}, {"ago", 8}, {"augustus", 8},
	{"september", 9}, {"sep", 9}, {"sept", 9}, {"septembre", 9}, {"septiembre", 9},
	{"settembre", 9}, {"set", 9},
	{"october", 10}, {"oct", 10}, {"oktober", 10}, {"okt", 10}, {"octobre", 10},
	{"octubre", 10}, {"ottobre", 10}, {"ott", 10},
	{"november", 11}, {"nov", 11}, {"novembre", 11}, {"noviembre", 11},
	{"december", 12}, {"dec", 12}, {"dezember", 12}, {"dez", 12}, {"decembre", 12},
	{"diciembre", 12}, {"dic", 12}, {"dicembre", 12},
};

static const char *const weekday_words[] = {
	"monday", "mon", "tuesday", "tue", "tues", "wednesday", "wed", "thursday", "thu", "thur",
	"thurs", "friday", "fri", "saturday", "sat", "sunday", "sun", "the", "of", "de", "del",
	"st", "nd", "rd", "th", "er", "eme", "am", "pm"
};

typedef enum DateOrder
{
	ORDER_DMY,
	ORDER_MDY,
	ORDER_YMD
} DateOrder;

static bool
ValidDate(int y, int m, int d)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int			maxd;

	if (y < 1 || y > 9999 || m < 1 || m > 12 || d < 1)
		return false;
	maxd = mdays[m - 1];
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		maxd = 29;
	return d <= maxd;
}

static int
FullYear(int y, int ndigits)
{
	if (ndigits <= 2)
		return y < 30 ? 2000 + y : 1900 + y;
	return y;
}

/* Parse a date; false when the text is not one. */
static bool
ParseDate(const char *s, int len, DateOrder order, int *py, int *pm, int *pd)
{
	int			nums[3];
	int			ndig[3];
	int			nn = 0;
	int			month = 0;
	int			month_pos = -1;
	int			nparts = 0;
	int			i = 0;
	int			y,
				m,
				d;

	if (len > 100)
		return false;
	while (i < len && nparts < 3)
	{
		unsigned char c = s[i];

		if (c >= '0' && c <= '9')
		{
			int			v = 0;
			int			k = 0;

			while (i < len && s[i] >= '0' && s[i] <= '9')
			{
				if (k < 9)
					v = v * 10 + (s[i] - '0');
				k++;
				i++;
			}
			if (nn == 3)
				return false;
			nums[nn] = v;
			ndig[nn] = k;
			nn++;
			nparts++;
		}
		else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80)
		{
			int			st = i;
			int			wn;
			pg_wchar   *w;
			char		word[16];
			int			wl = 0;
			bool		known = false;

			while (i < len && (((s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'z') ||
							   (unsigned char) s[i] >= 0x80))
				i++;
			/* an ISO "T" before a time: the date is complete */
			if (i - st == 1 && (c == 'T' || c == 't') && nparts == 3)
				break;
			w = EcrmFoldString(s + st, i - st, &wn);
			for (int k = 0; k < wn && wl < 15; k++)
				if (w[k] >= 'a' && w[k] <= 'z')
					word[wl++] = w[k];
			word[wl] = '\0';
			if (wl == 0 || wn > 15)
				return false;
			for (int k = 0; k < (int) lengthof(month_names); k++)
				if (strcmp(word, month_names[k].name) == 0)
				{
					if (month != 0)
						return false;
					month = month_names[k].month;
					month_pos = nparts++;
					known = true;
					break;
				}
			if (!known)
			{
				for (int k = 0; k < (int) lengthof(weekday_words); k++)
					if (strcmp(word, weekday_words[k]) == 0)
						known = true;
				if (!known)
					return false;
			}
		}
		else
			i++;
	}

	/* only a time may follow a date ("2024-03-05T10:00", "5 Mar 2024, 10:30") */
	while (i < len && (s[i] == ' ' || s[i] == ',' || s[i] == '\t'))
		i++;
	if (i < len && !(s[i] == 'T' || s[i] == 't' ||
					 (s[i] >= '0' && s[i] <= '9' &&
					  ((i + 1 < len && s[i + 1] == ':') || (i + 2 < len && s[i + 2] == ':')))))
		return false;

	if (nparts == 1 && nn == 1 && ndig[0] == 8)
	{
		int			v = nums[0];
		int			a = v / 10000,
					b = (v / 100) % 100,
					c = v % 100;

		/* YYYYMMDD first, then DDMMYYYY or MMDDYYYY */
		if (ValidDate(a, b, c))
		{
			*py = a, *pm = b, *pd = c;
			return true;
		}
		a = v / 1000000, b = (v / 10000) % 100, c = v % 10000;
		if (order == ORDER_MDY && ValidDate(c, a, b))
		{
			*py = c, *pm = a, *pd = b;
			return true;
		}
		if (ValidDate(c, b, a))
		{
			*py = c, *pm = b, *pd = a;
			return true;
		}
		return false;
	}
	if (nparts != 3)
		return false;

	if (month != 0)
	{
		if (nn != 2)
			return false;
		/* year first ("2024 Mar 5") or last ("5 Mar 2024", "Mar 5, 2024") */
		if (ndig[0] >= 3 || (month_pos == 2 && ndig[1] <= 2 && nums[0] > 31))
		{
			y = FullYear(nums[0], ndig[0]), d = nums[1];
		}
		else
		{
			d = nums[0], y = FullYear(nums[1], ndig[1]);
			if (ndig[1] > 4)
				return false;
		}
		if (ndig[0] > 4 || ndig[1] > 4 || !ValidDate(y, month, d))
			return false;
		*py = y, *pm = month, *pd = d;
		return true;
	}

	if (nn != 3 || ndig[0] > 4 || ndig[1] > 2 || ndig[2] > 4)
		return false;
	if (ndig[0] >= 3 || (order == ORDER_YMD && ndig[2] <= 2))
	{
		y = FullYear(nums[0], ndig[0]), m = nums[1], d = nums[2];
		if (ndig[2] > 2)
			return false;
		if (ValidDate(y, m, d))
		{
			*py = y, *pm = m, *pd = d;
			return true;
		}
		return false;
	}
	if (ndig[0] > 2)
		return false;
	y = FullYear(nums[2], ndig[2]);
	if (order == ORDER_MDY)
		m = nums[0], d = nums[1];
	else
		d = nums[0], m = nums[1];
	if (!ValidDate(y, m, d))
	{
		/* the other way round, when only that is a date (13/05 vs 05/13) */
		int			t = m;

		m = d, d = t;
		if (!ValidDate(y, m, d))
			return false;
	}
	*py = y, *pm = m, *pd = d;
	return true;
}

static DateOrder
ParseOrder(text *t)
{
	char	   *o = text_to_cstring(t);

	if (pg_strcasecmp(o, "DMY") == 0)
		return ORDER_DMY;
	if (pg_strcasecmp(o, "MDY") == 0)
		return ORDER_MDY;
	if (pg_strcasecmp(o, "YMD") == 0)
		return ORDER_YMD;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid date field order \"%s\"", o),
			 errhint("Use DMY, MDY or YMD.")));
	return ORDER_DMY;			/* keep compiler quiet */
}

/* A date written in any common way; NULL when the text is not a date. */
PG_FUNCTION_INFO_V1(ecrm_normalize_date);
Datum
ecrm_normalize_date(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	DateOrder	order = ParseOrder(PG_GETARG_TEXT_PP(1));
	int			y,
				m,
				d;

	if (!ParseDate(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), order, &y, &m, &d))
		PG_RETURN_NULL();
	PG_RETURN_DATEADT(date2j(y, m, d) - POSTGRES_EPOCH_JDATE);
}

/* Exported for the date comparison of similarity.c: Julian day or -1. */
int
EcrmParseDateJulian(const char *s, int len)
{
	int			y,
				m,
				d;

	if (!ParseDate(s, len, ORDER_DMY, &y, &m, &d))
		return -1;
	return date2j(y, m, d);
}
