/*
 * textfold.h — code points and case/accent folding shared by the name and
 * address normalisers (normalize_name.c) and the similarity kernels
 * (similarity.c).
 */
#ifndef ECRM_TEXTFOLD_H
#define ECRM_TEXTFOLD_H

#include "mb/pg_wchar.h"

/*
 * Longest string, in characters, that the quadratic similarity kernels
 * accept.  Names and addresses are far shorter; the cap bounds time (a Jaro
 * of two such strings takes milliseconds, not hours).
 */
#define ECRM_MAX_COMPARE_CHARS	10000

/* Code points of a string: in a caller's stack buffer when short. */
#define ECRM_CP_STACK	64

typedef struct EcrmCodepoints
{
	pg_wchar   *cp;
	int			len;
	bool		allocated;
	pg_wchar	buf[ECRM_CP_STACK];
} EcrmCodepoints;

/*
 * Decode text of the database encoding into code points.  In a UTF-8
 * database pure ASCII is copied byte by byte and other text decoded inline;
 * other encodings go through pg_mb2wchar_with_len.  "what" names the
 * argument in the error raised for strings longer than max_chars (0 = no
 * limit beyond ECRM_MAX_FIELD_BYTES).
 */
extern void EcrmDecode(const char *s, int len, EcrmCodepoints *out,
					   int max_chars, const char *what);
extern void EcrmCodepointsFree(EcrmCodepoints *c);

/*
 * Fold one code point for matching: lower case, accents removed, ligatures
 * spelled out.  Writes at most 2 code points to out and returns how many;
 * returns 0 for combining marks (dropped) and -1 for a code point this table
 * does not know (a caller may fall back to NFKD decomposition).
 */
extern int	EcrmFoldCodepoint(pg_wchar c, pg_wchar *out);

/*
 * Fold a whole string into code points: lower case, accents removed
 * (NFKD for letters outside the built-in table).  Returns a palloc'd array
 * and its length; *len_out is set.
 */
extern pg_wchar *EcrmFoldString(const char *s, int len, int *len_out);

/* Encode code points back into a palloc'd text of the database encoding. */
extern text *EcrmCodepointsToText(const pg_wchar *cp, int len);

static inline bool
EcrmIsAsciiAlnum(pg_wchar c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		(c >= 'A' && c <= 'Z');
}

/* A letter or digit after folding: ASCII alnum or any non-ASCII letter we kept. */
static inline bool
EcrmIsWordChar(pg_wchar c)
{
	if (c < 0x80)
		return EcrmIsAsciiAlnum(c);
	/* General punctuation, symbols, spaces of the BMP that we know of */
	if ((c >= 0x2000 && c <= 0x206F) || (c >= 0x3000 && c <= 0x303F) ||
		c == 0x00A0 || c == 0x00AB || c == 0x00BB || c == 0x00B7 ||
		c == 0x00D7 || c == 0x00F7 || c == 0xFEFF || (c >= 0x00A1 && c <= 0x00BF))
		return false;
	return true;
}

#endif							/* ECRM_TEXTFOLD_H */
