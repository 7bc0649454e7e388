/*
 * textfold.c — decoding text into code points and folding them for
 * matching (lower case, no accents, ligatures spelled out).
 *
 * Latin-1 and Latin Extended-A letters, the ones customer names are written
 * in, fold through a table (fast, no allocation).  Other letters with a
 * canonical or compatibility decomposition (Vietnamese, full-width forms,
 * Latin Extended-B/Additional) fold through PostgreSQL's own NFKD
 * (common/unicode_norm.h) with combining marks dropped; Greek and Cyrillic
 * capitals are lowered.  Folding is for matching only: it is lossy.
 *
 * In a database whose encoding is not UTF-8, only ASCII is folded.
 */
#include "postgres.h"

#include "common/unicode_norm.h"
#include "ecrm.h"
#include "textfold.h"

/* U+00C0 .. U+017F folded to ASCII; NULL keeps the code point (x, /). */
static const char *const latin_fold[] = {
	/* C0 */ "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",
	/* D0 */ "d", "n", "o", "o", "o", "o", "o", NULL, "o", "u", "u", "u", "u", "y", "th", "ss",
	/* E0 */ "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",
	/* F0 */ "d", "n", "o", "o", "o", "o", "o", NULL, "o", "u", "u", "u", "u", "y", "th", "y",
	/* 100 */ "a", "a", "a", "a", "a", "a", "c", "c", "c", "c", "c", "c", "c", "c", "d", "d",
	/* 110 */ "d", "d", "e", "e", "e", "e", "e", "e", "e", "e", "e", "e", "g", "g", "g", "g",
	/* 120 */ "g", "g", "g", "g", "h", "h", "h", "h", "i", "i", "i", "i", "i", "i", "i", "i",
	/* 130 */ "i", "i", "ij", "ij", "j", "j", "k", "k", "k", "l", "l", "l", "l", "l", "l", "l",
	/* 140 */ "l", "l", "l", "n", "n", "n", "n", "n", "n", "n", "n", "n", "o", "o", "o", "o",
	/* 150 */ "o", "o", "oe", "oe", "r", "r", "r", "r", "r", "r", "s", "s", "s", "s", "s", "s",
	/* 160 */ "s", "s", "t", "t", "t", "t", "t", "t", "u", "u", "u", "u", "u", "u", "u", "u",
	/* 170 */ "u", "u", "u", "u", "w", "w", "y", "y", "y", "z", "z", "z", "z", "z", "z", "s",
};

StaticAssertDecl(lengthof(latin_fold) == 0x180 - 0xC0, "latin_fold covers U+00C0..U+017F");

int
EcrmFoldCodepoint(pg_wchar c, pg_wchar *out)
{
	if (c < 0x80)
	{
		out[0] = (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
		return 1;
	}
	if (c >= 0xC0 && c < 0x180)
	{
		const char *f = latin_fold[c - 0xC0];

		if (f == NULL)
		{
			out[0] = c;
			return 1;
		}
		out[0] = (unsigned char) f[0];
		if (f[1] == '\0')
			return 1;
		out[1] = (unsigned char) f[1];
		return 2;
	}
	/* combining diacritical marks */
	if ((c >= 0x0300 && c <= 0x036F) || (c >= 0x1AB0 && c <= 0x1AFF) ||
		(c >= 0x1DC0 && c <= 0x1DFF) || (c >= 0x20D0 && c <= 0x20FF) ||
		(c >= 0xFE20 && c <= 0xFE2F))
		return 0;
	/* Romanian comma-below letters, the Latin Extended-B ones names use most */
	if (c >= 0x0218 && c <= 0x021B)
	{
		out[0] = (c < 0x021A) ? 's' : 't';
		return 1;
	}
	if (c == 0x1E9E)			/* capital sharp s */
	{
		out[0] = 's';
		out[1] = 's';
		return 2;
	}
	/* Greek capitals (no accent) and Cyrillic capitals */
	if (c >= 0x0391 && c <= 0x03A9 && c != 0x03A2)
	{
		out[0] = c + 0x20;
		return 1;
	}
	if (c >= 0x0410 && c <= 0x042F)
	{
		out[0] = c + 0x20;
		return 1;
	}
	if (c >= 0x0400 && c <= 0x040F)
	{
		out[0] = c + 0x50;
		return 1;
	}
	/* letters without a decomposition that we know of: keep them */
	if ((c >= 0x03B1 && c <= 0x03C9) || (c >= 0x0430 && c <= 0x045F) ||
		(c >= 0x0590 && c <= 0x06FF) || (c >= 0x3040 && c <= 0x30FF) ||
		(c >= 0x4E00 && c <= 0x9FFF) || (c >= 0xAC00 && c <= 0xD7A3))
	{
		out[0] = c;
		return 1;
	}
	return -1;
}

void
EcrmCodepointsFree(EcrmCodepoints *c)
{
	if (c->allocated)
		pfree(c->cp);
	c->allocated = false;
}

static void
TooLong(const char *what, int n, int max_chars)
{
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("%s is too long for this comparison (%d characters)", what, n),
			 errdetail("The limit is %d characters.", max_chars)));
}

void
EcrmDecode(const char *s, int len, EcrmCodepoints *out, int max_chars, const char *what)
{
	const unsigned char *p = (const unsigned char *) s;
	int			n = 0;

	out->allocated = false;
	out->cp = out->buf;
	/* a character is at least one byte, so len bounds the count */
	if (len > ECRM_CP_STACK)
	{
		if (max_chars > 0 && pg_mbstrlen_with_len(s, len) > max_chars)
			TooLong(what, pg_mbstrlen_with_len(s, len), max_chars);
		out->cp = palloc_extended(mul_size(len + 1, sizeof(pg_wchar)), MCXT_ALLOC_HUGE);
		out->allocated = true;
	}
	if (GetDatabaseEncoding() != PG_UTF8)
	{
		out->len = pg_mb2wchar_with_len(s, out->cp, len);
		return;
	}
	for (int i = 0; i < len;)
	{
		unsigned char c = p[i];

		if (c < 0x80)
		{
			out->cp[n++] = c;
			i++;
		}
		else if ((c & 0xE0) == 0xC0 && i + 1 < len)
		{
			out->cp[n++] = ((c & 0x1F) << 6) | (p[i + 1] & 0x3F);
			i += 2;
		}
		else if ((c & 0xF0) == 0xE0 && i + 2 < len)
		{
			out->cp[n++] = ((c & 0x0F) << 12) | ((p[i + 1] & 0x3F) << 6) | (p[i + 2] & 0x3F);
			i += 3;
		}
		else if ((c & 0xF8) == 0xF0 && i + 3 < len)
		{
			out->cp[n++] = ((c & 0x07) << 18) | ((p[i + 1] & 0x3F) << 12) |
				((p[i + 2] & 0x3F) << 6) | (p[i + 3] & 0x3F);
			i += 4;
		}
		else
		{
			/* cannot happen for verified text; take the byte as it is */
			out->cp[n++] = c;
			i++;
		}
	}
	out->len = n;
}

pg_wchar *
EcrmFoldString(const char *s, int len, int *len_out)
{
	EcrmCodepoints in;
	pg_wchar   *res;
	int			n = 0;
	bool		need_nfkd = false;
	bool		utf8 = (GetDatabaseEncoding() == PG_UTF8);

	EcrmDecode(s, len, &in, 0, NULL);
	/* folding at most doubles the length */
	res = palloc_extended(mul_size(add_size(mul_size(in.len, 2), 1), sizeof(pg_wchar)),
						  MCXT_ALLOC_HUGE);
	for (int i = 0; i < in.len; i++)
	{
		int			k;

		if (!utf8 && in.cp[i] >= 0x80)
		{
			res[n++] = in.cp[i];
			continue;
		}
		k = EcrmFoldCodepoint(in.cp[i], res + n);
		if (k < 0)
		{
			need_nfkd = true;
			break;
		}
		n += k;
	}

	if (need_nfkd)
	{
		pg_wchar   *z;
		pg_wchar   *d;
		int			dn = 0;

		/* NFKD wants a terminated string */
		z = palloc_extended(mul_size(in.len + 1, sizeof(pg_wchar)), MCXT_ALLOC_HUGE);
		memcpy(z, in.cp, in.len * sizeof(pg_wchar));
		z[in.len] = 0;
		d = unicode_normalize(UNICODE_NFKD, z);
		if (d == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
		while (d[dn] != 0)
			dn++;
		pfree(res);
		res = palloc_extended(mul_size(add_size(mul_size(dn, 2), 1), sizeof(pg_wchar)),
							  MCXT_ALLOC_HUGE);
		n = 0;
		for (int i = 0; i < dn; i++)
		{
			int			k = EcrmFoldCodepoint(d[i], res + n);

			if (k < 0)
			{
				res[n] = d[i];
				k = 1;
			}
			n += k;
		}
		pfree(z);
		pfree(d);
	}
	EcrmCodepointsFree(&in);
	*len_out = n;
	return res;
}

text *
EcrmCodepointsToText(const pg_wchar *cp, int len)
{
	int			maxlen = pg_encoding_max_length(GetDatabaseEncoding());
	text	   *t = palloc_extended(add_size(mul_size(len, maxlen), VARHDRSZ + 1),
									MCXT_ALLOC_HUGE);
	int			n;

	n = pg_wchar2mb_with_len(cp, VARDATA(t), len);
	SET_VARSIZE(t, n + VARHDRSZ);
	return t;
}
