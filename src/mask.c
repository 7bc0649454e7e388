/*
 * mask.c — partial masking of identifiers: free-form partial masks, email
 * addresses, phone numbers, person names, street addresses, postal codes,
 * payment cards, IBANs and identifiers such as national ids; and of JSON
 * documents (an allow-list of keys, the identities of customer_360).
 *
 * Every function here is a pure function of its arguments (IMMUTABLE) and
 * follows two rules: a value that cannot be parsed is never echoed back (it
 * becomes "***"), and at least one character of what it hides stays hidden,
 * however the arguments are chosen.  Errors never quote the value.
 */
#include "postgres.h"

#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "ecrm.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pii.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

static inline text *
MaskInvalid(void)
{
	return cstring_to_text(ECRM_MASK_INVALID);
}

static inline void
AppendRepeat(StringInfo out, char c, int n)
{
	for (int i = 0; i < n; i++)
		appendStringInfoChar(out, c);
}

/* Byte offset of the character after the first nchars characters of s. */
static int
CharOffset(const char *s, int len, int nchars)
{
	int			off = 0;

	while (nchars-- > 0 && off < len)
		off += pg_mblen(s + off);
	return Min(off, len);
}

/*
 * Which of the allowed options (a NULL-terminated list) the text argument
 * argno names.  NULL or anything else is an error; hint lists the options.
 */
int
EcrmOptionIndex(FunctionCallInfo fcinfo, int argno, const char *fn, const char *arg,
				const char *const *allowed, const char *hint)
{
	text	   *t;
	const char *s;
	int			len;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s of %s must not be null", arg, fn),
				 errhint("Use one of: %s.", hint)));
	t = PG_GETARG_TEXT_PP(argno);
	s = VARDATA_ANY(t);
	len = VARSIZE_ANY_EXHDR(t);
	for (int i = 0; allowed[i] != NULL; i++)
		if ((int) strlen(allowed[i]) == len && memcmp(allowed[i], s, len) == 0)
			return i;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown %s \"%s\" for %s", arg, EcrmClip(s, len), fn),
			 errhint("Use one of: %s.", hint)));
	return -1;					/* keep compiler quiet */
}

/*
 * Keep the first prefix and the last suffix characters and put padding in
 * between.  When prefix + suffix would show the whole value, only the padding
 * is returned.
 */
PG_FUNCTION_INFO_V1(ecrm_mask_partial);
Datum
ecrm_mask_partial(PG_FUNCTION_ARGS)
{
	text	   *t;
	int32		prefix,
				suffix;
	text	   *pad;
	const char *s;
	int			len;
	int			nchars;
	int			pre_bytes,
				suf_start;
	StringInfoData out;

	ECRM_ARG_NOT_NULL(1, "mask_partial", "prefix");
	ECRM_ARG_NOT_NULL(2, "mask_partial", "padding");
	ECRM_ARG_NOT_NULL(3, "mask_partial", "suffix");
	prefix = PG_GETARG_INT32(1);
	pad = PG_GETARG_TEXT_PP(2);
	suffix = PG_GETARG_INT32(3);
	if (prefix < 0 || suffix < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("prefix and suffix of mask_partial must not be negative"),
				 errdetail("prefix is %d and suffix is %d.", prefix, suffix)));
	if (VARSIZE_ANY_EXHDR(pad) > 1000)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("padding of mask_partial is too long (%d bytes)", (int) VARSIZE_ANY_EXHDR(pad)),
				 errdetail("The limit is 1000 bytes.")));
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	t = PG_GETARG_TEXT_PP(0);
	s = VARDATA_ANY(t);
	len = VARSIZE_ANY_EXHDR(t);
	if (len == 0)
		PG_RETURN_TEXT_P(cstring_to_text(""));
	nchars = pg_mbstrlen_with_len(s, len);
	if ((int64) prefix + suffix >= nchars)
		PG_RETURN_TEXT_P(pad);
	pre_bytes = CharOffset(s, len, prefix);
	suf_start = CharOffset(s, len, nchars - suffix);
	initStringInfo(&out);
	appendBinaryStringInfo(&out, s, pre_bytes);
	appendBinaryStringInfo(&out, VARDATA_ANY(pad), VARSIZE_ANY_EXHDR(pad));
	appendBinaryStringInfo(&out, s + suf_start, len - suf_start);
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out.data, out.len));
}

/*
 * Public email providers, sorted: a masked address keeps such a domain (it
 * tells the class of address, not who it is), while a company's own domain
 * is hidden down to its public suffix.
 */
static const char *const email_providers[] = {
	"126.com", "163.com", "aol.com", "att.net", "bigpond.com", "bluewin.ch", "bol.com.br",
	"btinternet.com", "charter.net", "comcast.net", "cox.net", "daum.net", "earthlink.net",
	"eircom.net", "fastmail.com", "fastmail.fm", "free.fr", "freenet.de", "gmail.com",
	"gmx.at", "gmx.ch", "gmx.de", "gmx.net", "googlemail.com", "hanmail.net", "hey.com",
	"home.nl", "hotmail.co.uk", "hotmail.com", "hotmail.de", "hotmail.es", "hotmail.fr",
	"hotmail.it", "hotmail.nl", "hotmail.se", "icloud.com", "interia.pl", "kpnmail.nl",
	"laposte.net", "libero.it", "live.co.uk", "live.com", "live.fr", "live.nl", "mac.com",
	"mail.com", "mail.ru", "me.com", "msn.com", "naver.com", "ntlworld.com", "o2.pl",
	"onet.pl", "optusnet.com.au", "orange.fr", "outlook.com", "outlook.de", "outlook.es",
	"outlook.fr", "outlook.ie", "planet.nl", "pm.me", "posteo.de", "proton.me",
	"protonmail.ch", "protonmail.com", "qq.com", "rambler.ru", "rediffmail.com", "rogers.com",
	"sapo.pt", "sbcglobal.net", "seznam.cz", "sfr.fr", "shaw.ca", "sina.com", "sky.com",
	"skynet.be", "sunrise.ch", "sympatico.ca", "t-online.de", "talktalk.net", "telefonica.net",
	"telenet.be", "telia.com", "terra.com.br", "tiscali.it", "tutanota.com", "uol.com.br",
	"verizon.net", "virgilio.it", "virginmedia.com", "wanadoo.fr", "web.de", "wp.pl",
	"yahoo.co.uk", "yahoo.com", "yahoo.de", "yahoo.es", "yahoo.fr", "yahoo.it", "yandex.com",
	"yandex.ru", "ymail.com", "ziggo.nl", "zoho.com",
};

/* Whether domain[0..len) (lower case) is a public mail provider's. */
static bool
IsEmailProvider(const char *domain, int len)
{
	int			lo = 0,
				hi = lengthof(email_providers) - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;
		const char *p = email_providers[mid];
		int			plen = strlen(p);
		int			cmp = memcmp(domain, p, Min(len, plen));

		if (cmp == 0)
			cmp = len - plen;
		if (cmp == 0)
			return true;
		if (cmp < 0)
			hi = mid - 1;
		else
			lo = mid + 1;
	}
	return false;
}

/* Second-level labels under which a country code top-level domain registers names (co.uk, com.au). */
static bool
IsSecondLevelLabel(const char *label, int len)
{
	static const char *const labels[] = {"ac", "co", "com", "edu", "go", "gob", "gov", "ltd",
	"mil", "ne", "net", "or", "org", "plc", "sch"};

	for (int i = 0; i < (int) lengthof(labels); i++)
		if ((int) strlen(labels[i]) == len && memcmp(labels[i], label, len) == 0)
			return true;
	return false;
}

/* Offset in domain[0..len) of its public suffix: "uk" of x.uk, "co.uk" of x.co.uk. */
static int
PublicSuffixStart(const char *domain, int len)
{
	int			last = len,
				prev;

	while (last > 0 && domain[last - 1] != '.')
		last--;
	if (len - last != 2 || last < 2)
		return last;
	prev = last - 1;
	while (prev > 0 && domain[prev - 1] != '.')
		prev--;
	if (prev > 0 && IsSecondLevelLabel(domain + prev, last - 1 - prev))
		return prev;
	return last;
}

typedef enum
{
	EMAIL_KEEP_PROVIDER,
	EMAIL_KEEP_DOMAIN,
	EMAIL_KEEP_TLD,
	EMAIL_KEEP_NONE,
} EmailKeep;

static const char *const email_keep_options[] = {"provider", "domain", "tld", "none", NULL};

/*
 * Mask an email address: the first character of the local part, "***", and
 * the domain as keep says: provider (default) keeps the domain of a public
 * mail provider and only the public suffix of any other, domain keeps the
 * domain, tld the public suffix, none nothing.  All lower case.  The result
 * is written straight into one allocation: this runs over whole tables in
 * masked views.
 */
static text *
MaskEmailText(const char *s, int len, EmailKeep keep)
{
	text	   *result;
	int			local_len,
				domain_start,
				dlen,
				first;
	char	   *p,
			   *domain;

	EcrmTrim(&s, &len);
	if (len == 0)
		return cstring_to_text("");
	if (!EcrmEmailParts(s, len, &local_len, &domain_start))
		return MaskInvalid();

	dlen = len - domain_start;
	if (s[len - 1] == '.')
		dlen--;
	first = Min(pg_mblen(s), local_len);
	/* first character, "***@", "***." and the domain */
	result = (text *) palloc(VARHDRSZ + first + 8 + dlen);
	p = VARDATA(result);
	if (first == 1)
		*p++ = pg_ascii_tolower((unsigned char) s[0]);
	else
	{
		memcpy(p, s, first);
		p += first;
	}
	memcpy(p, "***@", 4);
	p += 4;
	domain = p + 4;				/* room to write "***." before a suffix */
	for (int i = 0; i < dlen; i++)
		domain[i] = pg_ascii_tolower((unsigned char) s[domain_start + i]);
	if (keep == EMAIL_KEEP_PROVIDER && IsEmailProvider(domain, dlen))
		keep = EMAIL_KEEP_DOMAIN;
	switch (keep)
	{
		case EMAIL_KEEP_DOMAIN:
			memmove(p, domain, dlen);
			p += dlen;
			break;
		case EMAIL_KEEP_PROVIDER:
		case EMAIL_KEEP_TLD:
			{
				int			suffix = PublicSuffixStart(domain, dlen);

				memcpy(p, "***.", 4);
				p += 4;
				memmove(p, domain + suffix, dlen - suffix);
				p += dlen - suffix;
				break;
			}
		case EMAIL_KEEP_NONE:
			memcpy(p, "***", 3);
			p += 3;
			break;
	}
	SET_VARSIZE(result, p - (char *) result);
	return result;
}

/* Masked email address (see MaskEmailText); *** when it is not one. */
PG_FUNCTION_INFO_V1(ecrm_mask_email);
Datum
ecrm_mask_email(PG_FUNCTION_ARGS)
{
	EmailKeep	keep = EMAIL_KEEP_PROVIDER;
	text	   *t;

	if (PG_NARGS() > 1)
		keep = (EmailKeep) EcrmOptionIndex(fcinfo, 1, "mask_email", "keep option", email_keep_options,
										   "provider, domain, tld, none");
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	t = PG_GETARG_TEXT_PP(0);
	PG_RETURN_TEXT_P(MaskEmailText(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), keep));
}

static inline bool
IsPhoneChar(char c)
{
	return c == ' ' || c == '-' || c == '.' || c == '(' || c == ')' || c == '/';
}

/*
 * Mask a phone number: an international one ("+44 ...", "0044 ...") keeps
 * "+" and its calling code, any other only its digits; then all digits but
 * the last keep_last (at most half of the national number) become "*".
 */
static text *
MaskPhoneText(const char *s, int len, int keep_last)
{
	const char *national;
	int			nlen;
	int			shown;
	char		digits[32];
	StringInfoData out;

	if (len > ECRM_MASK_MAX_BYTES)
		return MaskInvalid();
	EcrmTrim(&s, &len);
	if (len == 0)
		return cstring_to_text("");
	initStringInfo(&out);
	if (s[0] == '+' || (len > 2 && s[0] == '0' && s[1] == '0'))
	{
		char	   *e164 = EcrmNormalizePhone(s, len, NULL);
		int			cclen;

		if (e164 == NULL)
			return MaskInvalid();
		cclen = EcrmPhoneCountryCodeLength(e164 + 1);
		appendBinaryStringInfo(&out, e164, 1 + cclen);
		national = e164 + 1 + cclen;
		nlen = strlen(national);
	}
	else
	{
		nlen = 0;
		for (int i = 0; i < len; i++)
		{
			if (s[i] >= '0' && s[i] <= '9')
			{
				if (nlen == 15)
					return MaskInvalid();
				digits[nlen++] = s[i];
			}
			else if (!IsPhoneChar(s[i]))
				return MaskInvalid();
		}
		if (nlen < 5)
			return MaskInvalid();
		national = digits;
	}
	shown = Min(keep_last, nlen / 2);
	AppendRepeat(&out, '*', nlen - shown);
	appendBinaryStringInfo(&out, national + nlen - shown, shown);
	return cstring_to_text_with_len(out.data, out.len);
}

PG_FUNCTION_INFO_V1(ecrm_mask_phone);
Datum
ecrm_mask_phone(PG_FUNCTION_ARGS)
{
	int32		keep_last;
	text	   *t;

	ECRM_ARG_NOT_NULL(1, "mask_phone", "keep_last");
	keep_last = PG_GETARG_INT32(1);
	if (keep_last < 0 || keep_last > 4)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("keep_last of mask_phone must be between 0 and 4, not %d", keep_last)));
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	t = PG_GETARG_TEXT_PP(0);
	PG_RETURN_TEXT_P(MaskPhoneText(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), keep_last));
}

/* Whether the character at s starts a word of a name: a letter (ASCII or multibyte). */
static inline bool
StartsWord(const char *s)
{
	unsigned char c = (unsigned char) *s;

	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}

/*
 * Mask a person's name: keep initials ("J. P."), the first word and the
 * initials of the others (keep first: "Jean P."), or nothing (none: "***").
 */
PG_FUNCTION_INFO_V1(ecrm_mask_name);
Datum
ecrm_mask_name(PG_FUNCTION_ARGS)
{
	const char *s;
	int			len;
	int			mode = 0;		/* 0 initials, 1 first, 2 none */
	int			words = 0;
	int			i = 0;
	StringInfoData out;

	static const char *const options[] = {"initials", "first", "none", NULL};

	if (PG_NARGS() > 1)
		mode = EcrmOptionIndex(fcinfo, 1, "mask_name", "keep option", options, "initials, first, none");
	if (!EcrmValueArg(fcinfo, 0, &s, &len))
		PG_RETURN_NULL();
	if (len == 0)
		PG_RETURN_TEXT_P(cstring_to_text(""));
	if (mode == 2 || len > ECRM_MASK_MAX_BYTES)
		PG_RETURN_TEXT_P(MaskInvalid());

	initStringInfo(&out);
	while (i < len && words < 10)
	{
		int			start,
					end;

		while (i < len && (s[i] == ' ' || s[i] == '\t'))
			i++;
		start = i;
		while (i < len && s[i] != ' ' && s[i] != '\t')
			i += pg_mblen(s + i);
		end = Min(i, len);
		if (end == start || !StartsWord(s + start))
			continue;
		if (words > 0)
			appendStringInfoChar(&out, ' ');
		if (mode == 1 && words == 0)
			appendBinaryStringInfo(&out, s + start, end - start);
		else
		{
			int			l = Min(pg_mblen(s + start), end - start);

			if (l == 1)
				appendStringInfoChar(&out, pg_ascii_toupper((unsigned char) s[start]));
			else
				appendBinaryStringInfo(&out, s + start, l);
			appendStringInfoChar(&out, '.');
		}
		words++;
	}
	if (words == 0)
		PG_RETURN_TEXT_P(MaskInvalid());
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out.data, out.len));
}

static bool
HasDigit(const char *s, int len)
{
	for (int i = 0; i < len; i++)
		if (s[i] >= '0' && s[i] <= '9')
			return true;
	return false;
}

/* A segment that names a flat or unit rather than the street ("Flat 3", "Apt 4B"). */
static bool
IsUnitSegment(const char *s, int len)
{
	static const char *const words[] = {"apartment", "apt", "bldg", "building", "fl", "flat",
	"floor", "no", "room", "ste", "suite", "unit", "#"};
	int			w = 0;

	while (w < len && s[w] == ' ')
		w++;
	s += w;
	len -= w;
	for (w = 0; w < len && s[w] != ' ' && s[w] != '.'; w++)
		;
	for (int i = 0; i < (int) lengthof(words); i++)
		if ((int) strlen(words[i]) == w && pg_strncasecmp(words[i], s, w) == 0)
			return true;
	return len > 0 && s[0] == '#';
}

/*
 * Mask a street address: keep the street of the first part that holds a
 * house number (skipping a "Flat 3" part), with every word that holds a digit
 * replaced by "***"; drop the other comma-separated parts.  "221B Baker
 * Street, London" becomes "*** Baker Street"; an address without a number
 * (a house name) becomes "***".
 */
PG_FUNCTION_INFO_V1(ecrm_mask_address);
Datum
ecrm_mask_address(PG_FUNCTION_ARGS)
{
	const char *s;
	int			len;
	int			seg_start = -1,
				seg_end = -1;
	int			pos = 0;
	int			kept = 0;
	StringInfoData out;

	if (!EcrmValueArg(fcinfo, 0, &s, &len))
		PG_RETURN_NULL();
	if (len == 0)
		PG_RETURN_TEXT_P(cstring_to_text(""));
	if (len > ECRM_MASK_MAX_BYTES)
		PG_RETURN_TEXT_P(MaskInvalid());
	while (pos <= len)
	{
		const char *comma = memchr(s + pos, ',', len - pos);
		int			end = comma ? comma - s : len;

		if (HasDigit(s + pos, end - pos))
		{
			if (seg_start < 0 || IsUnitSegment(s + seg_start, seg_end - seg_start))
			{
				bool		was_unit = seg_start >= 0;

				seg_start = pos;
				seg_end = end;
				if (was_unit || !IsUnitSegment(s + pos, end - pos))
					break;
			}
		}
		pos = end + 1;
	}
	if (seg_start < 0)
		PG_RETURN_TEXT_P(MaskInvalid());

	initStringInfo(&out);
	pos = seg_start;
	while (pos < seg_end)
	{
		int			start,
					end;

		while (pos < seg_end && (s[pos] == ' ' || s[pos] == '\t'))
			pos++;
		start = pos;
		while (pos < seg_end && s[pos] != ' ' && s[pos] != '\t')
			pos++;
		end = pos;
		if (end == start)
			continue;
		if (out.len > 0)
			appendStringInfoChar(&out, ' ');
		if (HasDigit(s + start, end - start))
			appendStringInfoString(&out, "***");
		else
		{
			appendBinaryStringInfo(&out, s + start, end - start);
			kept++;
		}
	}
	if (kept == 0)
		PG_RETURN_TEXT_P(MaskInvalid());
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out.data, out.len));
}

static inline bool
IsAsciiAlnum(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/*
 * Generalise a postal code to its area: the part before a space or hyphen
 * ("SW1A 1AA" -> "SW1A ***", "K1A 0B1" -> "K1A ***"); for a code written in
 * one piece, the first three of five or more digits ("90210" -> "902**"), the
 * first two of four, the four digits of a Dutch code ("1012AB" -> "1012**"),
 * or all but the last three characters of a British code written without its
 * space.  Masked characters become "*".
 */
PG_FUNCTION_INFO_V1(ecrm_mask_postal_code);
Datum
ecrm_mask_postal_code(PG_FUNCTION_ARGS)
{
	const char *s;
	int			len;
	int			sep = -1;
	int			ndigits = 0,
				nalnum = 0;
	int			keep;
	StringInfoData out;

	if (!EcrmValueArg(fcinfo, 0, &s, &len))
		PG_RETURN_NULL();
	if (len == 0)
		PG_RETURN_TEXT_P(cstring_to_text(""));
	if (len > ECRM_MASK_MAX_BYTES)
		PG_RETURN_TEXT_P(MaskInvalid());
	if (len > 12)
		PG_RETURN_TEXT_P(MaskInvalid());
	for (int i = 0; i < len; i++)
	{
		if (IsAsciiAlnum(s[i]))
		{
			nalnum++;
			if (s[i] >= '0' && s[i] <= '9')
				ndigits++;
		}
		else if ((s[i] == ' ' || s[i] == '-') && sep < 0 && i > 0)
			sep = i;
		else
			PG_RETURN_TEXT_P(MaskInvalid());
	}
	if (nalnum < 3)
		PG_RETURN_TEXT_P(MaskInvalid());

	if (sep > 0)
	{
		bool		all_digits = true;

		for (int i = 0; i < sep; i++)
			all_digits &= (s[i] >= '0' && s[i] <= '9');
		/* ZIP+4: generalise the ZIP itself */
		keep = (all_digits && sep >= 5) ? 3 : sep;
	}
	else if (ndigits == nalnum)
		keep = nalnum >= 5 ? 3 : (nalnum == 4 ? 2 : 1);
	else if (nalnum == 6 && ndigits == 4 && s[0] >= '0' && s[0] <= '9')
		keep = 4;
	else
		keep = nalnum >= 5 ? nalnum - 3 : 1;

	initStringInfo(&out);
	for (int i = 0; i < len; i++)
	{
		if (!IsAsciiAlnum(s[i]))
			appendStringInfoChar(&out, s[i]);
		else if (i < keep)
			appendStringInfoChar(&out, pg_ascii_toupper((unsigned char) s[i]));
		else
			appendStringInfoChar(&out, '*');
	}
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out.data, out.len));
}

/*
 * Mask a payment card number: a valid one (12 to 19 digits, Luhn check)
 * becomes stars and its last four digits; anything else "***".
 */
PG_FUNCTION_INFO_V1(ecrm_mask_card);
Datum
ecrm_mask_card(PG_FUNCTION_ARGS)
{
	const char *s;
	int			len;
	char		digits[ECRM_CARD_MAX_DIGITS + 1];
	int			n;
	StringInfoData out;

	if (!EcrmValueArg(fcinfo, 0, &s, &len))
		PG_RETURN_NULL();
	if (len == 0)
		PG_RETURN_TEXT_P(cstring_to_text(""));
	if (len > ECRM_MASK_MAX_BYTES)
		PG_RETURN_TEXT_P(MaskInvalid());
	n = EcrmCardDigits(s, len, digits);
	if (n < ECRM_CARD_MIN_DIGITS || !EcrmLuhnValid(digits, n))
		PG_RETURN_TEXT_P(MaskInvalid());
	initStringInfo(&out);
	AppendRepeat(&out, '*', n - 4);
	appendBinaryStringInfo(&out, digits + n - 4, 4);
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out.data, out.len));
}

/*
 * Mask an IBAN: a valid one (its country's length, mod-97 check) keeps its
 * country code and last four characters; anything else becomes "***".
 */
PG_FUNCTION_INFO_V1(ecrm_mask_iban);
Datum
ecrm_mask_iban(PG_FUNCTION_ARGS)
{
	const char *s;
	int			len;
	char		iban[ECRM_IBAN_MAX + 1];
	int			n;
	StringInfoData out;

	if (!EcrmValueArg(fcinfo, 0, &s, &len))
		PG_RETURN_NULL();
	if (len == 0)
		PG_RETURN_TEXT_P(cstring_to_text(""));
	if (len > ECRM_MASK_MAX_BYTES)
		PG_RETURN_TEXT_P(MaskInvalid());
	n = EcrmIbanCompact(s, len, iban);
	if (n <= 0 || !EcrmIbanValid(iban, n))
		PG_RETURN_TEXT_P(MaskInvalid());
	initStringInfo(&out);
	appendBinaryStringInfo(&out, iban, 2);
	AppendRepeat(&out, '*', n - 6);
	appendBinaryStringInfo(&out, iban + n - 4, 4);
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out.data, out.len));
}

/* Whether the character at s is a letter or digit (multibyte characters count as letters). */
static inline bool
IsMaskable(const char *s)
{
	return IsAsciiAlnum(*s) || (unsigned char) *s >= 0x80;
}

/*
 * Replace every letter and digit by "*" except the first keep_first and the
 * last keep_last of them; separators stay ("123-45-6789", 0, 4 ->
 * "***-**-6789").  When the kept ones would be all of them, all are masked.
 */
PG_FUNCTION_INFO_V1(ecrm_mask_keep);
Datum
ecrm_mask_keep(PG_FUNCTION_ARGS)
{
	text	   *t;
	int32		keep_first,
				keep_last;
	const char *s;
	int			len;
	int			n = 0,
				k = 0;
	StringInfoData out;

	ECRM_ARG_NOT_NULL(1, "mask_keep", "keep_first");
	ECRM_ARG_NOT_NULL(2, "mask_keep", "keep_last");
	keep_first = PG_GETARG_INT32(1);
	keep_last = PG_GETARG_INT32(2);
	if (keep_first < 0 || keep_last < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("keep_first and keep_last of mask_keep must not be negative"),
				 errdetail("keep_first is %d and keep_last is %d.", keep_first, keep_last)));
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	t = PG_GETARG_TEXT_PP(0);
	s = VARDATA_ANY(t);
	len = VARSIZE_ANY_EXHDR(t);
	for (int i = 0; i < len; i += pg_mblen(s + i))
		if (IsMaskable(s + i))
			n++;
	if ((int64) keep_first + keep_last >= n)
		keep_first = keep_last = 0;
	initStringInfo(&out);
	for (int i = 0; i < len;)
	{
		int			l = Min(pg_mblen(s + i), len - i);

		if (IsMaskable(s + i))
		{
			if (k < keep_first || k >= n - keep_last)
				appendBinaryStringInfo(&out, s + i, l);
			else
				appendStringInfoChar(&out, '*');
			k++;
		}
		else
			appendBinaryStringInfo(&out, s + i, l);
		i += l;
	}
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out.data, out.len));
}

/* Whether key[0..len) is one of the n non-NULL texts in keys. */
static bool
KeyListed(const char *key, int len, Datum *keys, bool *nulls, int n)
{
	for (int i = 0; i < n; i++)
		if (!nulls[i] && (int) VARSIZE_ANY_EXHDR(DatumGetPointer(keys[i])) == len &&
			memcmp(VARDATA_ANY(DatumGetPointer(keys[i])), key, len) == 0)
			return true;
	return false;
}

/*
 * A JSON object with only the listed top-level keys (an allow-list, so keys
 * added later stay hidden); NULL for anything but an object.
 */
PG_FUNCTION_INFO_V1(ecrm_mask_jsonb);
Datum
ecrm_mask_jsonb(PG_FUNCTION_ARGS)
{
	Jsonb	   *doc;
	Datum	   *keys = NULL;
	bool	   *nulls = NULL;
	int			nkeys = 0;
	JsonbIterator *it;
	JsonbValue	v,
				key;
	JsonbIteratorToken r;
	JsonbParseState *state = NULL;
	JsonbValue *res;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	doc = PG_GETARG_JSONB_P(0);
	if (!JB_ROOT_IS_OBJECT(doc) || JB_ROOT_IS_SCALAR(doc))
		PG_RETURN_NULL();
	if (!PG_ARGISNULL(1))
	{
		ArrayType  *a = PG_GETARG_ARRAYTYPE_P(1);

		if (ARR_NDIM(a) > 1)
			ereport(ERROR,
					(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
					 errmsg("keys of mask_jsonb must be a one-dimensional array")));
		deconstruct_array(a, TEXTOID, -1, false, TYPALIGN_INT, &keys, &nulls, &nkeys);
	}
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	it = JsonbIteratorInit(&doc->root);
	while ((r = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (r != WJB_KEY)
			continue;
		key = v;
		r = JsonbIteratorNext(&it, &v, true);
		if (KeyListed(key.val.string.val, key.val.string.len, keys, nulls, nkeys))
		{
			pushJsonbValue(&state, WJB_KEY, &key);
			pushJsonbValue(&state, WJB_VALUE, &v);
		}
	}
	res = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	PG_RETURN_JSONB_P(JsonbValueToJsonb(res));
}

/* The string value of key in a JSON object, or NULL when it is absent or not a string. */
static JsonbValue *
StringField(JsonbContainer *obj, const char *key)
{
	JsonbValue *v = getKeyJsonValueFromContainer(obj, key, strlen(key), NULL);

	return (v != NULL && v->type == jbvString) ? v : NULL;
}

static void
PushStringPair(JsonbParseState **state, const char *key, const char *val, int len)
{
	JsonbValue	k,
				v;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	pushJsonbValue(state, WJB_KEY, &k);
	if (val == NULL)
		v.type = jbvNull;
	else
	{
		v.type = jbvString;
		v.val.string.val = (char *) val;
		v.val.string.len = len;
	}
	pushJsonbValue(state, WJB_VALUE, &v);
}

/*
 * Whether a kept value passes its vocabulary spec (a JSON array of strings, or
 * "pattern:<regex>", or "defer": a string the SQL around checks) or, without
 * one, PII detection.  Booleans and nulls pass; objects and arrays never do.
 */
static bool
ValuePasses(JsonbValue *v, JsonbValue *spec)
{
	const char *s;
	int			len;

	if (v->type == jbvNull || v->type == jbvBool)
		return true;
	if (v->type == jbvString)
	{
		s = v->val.string.val;
		len = v->val.string.len;
	}
	else if (v->type == jbvNumeric && spec == NULL)
	{
		s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
		len = strlen(s);
	}
	else
		return false;
	if (spec == NULL)
		return len <= 1000 && !EcrmHoldsPii(s, len);
	if (spec->type == jbvString && spec->val.string.len == 5 && memcmp(spec->val.string.val, "defer", 5) == 0)
		return true;
	if (spec->type == jbvString && spec->val.string.len > 8 && memcmp(spec->val.string.val, "pattern:", 8) == 0)
	{
		if (len > 200)
			return false;
		return DatumGetBool(DirectFunctionCall2Coll(textregexeq, C_COLLATION_OID,
													PointerGetDatum(cstring_to_text_with_len(s, len)),
													PointerGetDatum(cstring_to_text_with_len(spec->val.string.val + 8,
																							 spec->val.string.len - 8))));
	}
	if (spec->type == jbvBinary && JsonContainerIsArray(spec->val.binary.data))
	{
		JsonbIterator *it = JsonbIteratorInit(spec->val.binary.data);
		JsonbValue	e;
		JsonbIteratorToken r;

		while ((r = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
			if (r == WJB_ELEM && e.type == jbvString && e.val.string.len == len && memcmp(e.val.string.val, s, len) == 0)
				return true;
		return false;
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid vocabulary in mask_jsonb"),
			 errdetail("A vocabulary is an array of strings, \"pattern:<regex>\" or \"defer\".")));
	return false;
}

/*
 * A JSON object with only the listed keys, each value checked (ValuePasses)
 * and replaced by "***" when it fails: a key stays visible, a value that is
 * not in its vocabulary or holds personal data does not.  NULL for anything
 * but an object.
 */
PG_FUNCTION_INFO_V1(ecrm_mask_jsonb_checked);
Datum
ecrm_mask_jsonb_checked(PG_FUNCTION_ARGS)
{
	Jsonb	   *doc;
	Jsonb	   *vocab = NULL;
	Datum	   *keys = NULL;
	bool	   *nulls = NULL;
	int			nkeys = 0;
	JsonbIterator *it;
	JsonbValue	v,
				key,
				masked;
	JsonbIteratorToken r;
	JsonbParseState *state = NULL;
	JsonbValue *res;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	doc = PG_GETARG_JSONB_P(0);
	if (!JB_ROOT_IS_OBJECT(doc) || JB_ROOT_IS_SCALAR(doc))
		PG_RETURN_NULL();
	if (!PG_ARGISNULL(1))
	{
		ArrayType  *a = PG_GETARG_ARRAYTYPE_P(1);

		if (ARR_NDIM(a) > 1)
			ereport(ERROR,
					(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
					 errmsg("keys of mask_jsonb must be a one-dimensional array")));
		deconstruct_array(a, TEXTOID, -1, false, TYPALIGN_INT, &keys, &nulls, &nkeys);
	}
	if (!PG_ARGISNULL(2))
	{
		vocab = PG_GETARG_JSONB_P(2);
		if (!JB_ROOT_IS_OBJECT(vocab) || JB_ROOT_IS_SCALAR(vocab))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("vocabularies of mask_jsonb must be a JSON object"),
					 errdetail("It maps a kept key to its vocabulary.")));
	}
	masked.type = jbvString;
	masked.val.string.val = ECRM_MASK_INVALID;
	masked.val.string.len = strlen(ECRM_MASK_INVALID);
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	it = JsonbIteratorInit(&doc->root);
	while ((r = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		JsonbValue *spec = NULL;

		CHECK_FOR_INTERRUPTS();
		if (r != WJB_KEY)
			continue;
		key = v;
		r = JsonbIteratorNext(&it, &v, true);
		if (!KeyListed(key.val.string.val, key.val.string.len, keys, nulls, nkeys))
			continue;
		if (vocab != NULL)
			spec = getKeyJsonValueFromContainer(&vocab->root, key.val.string.val, key.val.string.len, NULL);
		pushJsonbValue(&state, WJB_KEY, &key);
		pushJsonbValue(&state, WJB_VALUE, ValuePasses(&v, spec) ? &v : &masked);
	}
	res = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	PG_RETURN_JSONB_P(JsonbValueToJsonb(res));
}

/*
 * Whether a string is a lower-case token (a letter, then up to 39 letters,
 * digits, '_', '.' or '-'): an identity kind or namespace such as "shopify".
 * Anything else in those fields is free text someone typed, and is masked.
 */
static bool
IsToken(const JsonbValue *v)
{
	if (v == NULL || v->val.string.len < 1 || v->val.string.len > 40)
		return false;
	if (v->val.string.val[0] < 'a' || v->val.string.val[0] > 'z')
		return false;
	for (int i = 1; i < v->val.string.len; i++)
	{
		char		c = v->val.string.val[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

/*
 * A JSON array of identities ({kind, namespace, value}, as in the view
 * customer_360) with emails and phones masked and every other identifier
 * replaced by "***"; a kind or namespace that is not a lower-case token is
 * "***" too (namespace is free text); elements that are not objects are left
 * out.  NULL for anything but an array.
 */
PG_FUNCTION_INFO_V1(ecrm_mask_identities);
Datum
ecrm_mask_identities(PG_FUNCTION_ARGS)
{
	Jsonb	   *doc = PG_GETARG_JSONB_P(0);
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken r;
	JsonbParseState *state = NULL;
	JsonbValue *res;

	if (!JB_ROOT_IS_ARRAY(doc) || JB_ROOT_IS_SCALAR(doc))
		PG_RETURN_NULL();
	pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
	it = JsonbIteratorInit(&doc->root);
	while ((r = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		JsonbContainer *obj;
		JsonbValue *kind,
				   *ns,
				   *val;
		text	   *masked = NULL;

		CHECK_FOR_INTERRUPTS();
		if (r != WJB_ELEM || v.type != jbvBinary || !JsonContainerIsObject(v.val.binary.data))
			continue;
		obj = v.val.binary.data;
		kind = StringField(obj, "kind");
		ns = StringField(obj, "namespace");
		val = StringField(obj, "value");
		if (val != NULL && kind != NULL && kind->val.string.len == 5 && memcmp(kind->val.string.val, "email", 5) == 0)
			masked = MaskEmailText(val->val.string.val, val->val.string.len, EMAIL_KEEP_PROVIDER);
		else if (val != NULL && kind != NULL && kind->val.string.len == 5 && memcmp(kind->val.string.val, "phone", 5) == 0)
			masked = MaskPhoneText(val->val.string.val, val->val.string.len, 2);
		else if (val != NULL)
			masked = MaskInvalid();
		pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
		if (kind != NULL && !IsToken(kind))
			PushStringPair(&state, "kind", "***", 3);
		else
			PushStringPair(&state, "kind", kind ? kind->val.string.val : NULL, kind ? kind->val.string.len : 0);
		if (ns != NULL && ns->val.string.len > 0 && !IsToken(ns))
			PushStringPair(&state, "namespace", "***", 3);
		else
			PushStringPair(&state, "namespace", ns ? ns->val.string.val : NULL, ns ? ns->val.string.len : 0);
		PushStringPair(&state, "value", masked ? VARDATA_ANY(masked) : NULL, masked ? VARSIZE_ANY_EXHDR(masked) : 0);
		pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	}
	res = pushJsonbValue(&state, WJB_END_ARRAY, NULL);
	PG_RETURN_JSONB_P(JsonbValueToJsonb(res));
}
