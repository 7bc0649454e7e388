/*
 * pii.c — recognising personal data: payment cards (Luhn), IBANs (mod 97),
 * email addresses, IP addresses, phone numbers, dates and person names, as
 * whole values (ecrm.pii_kind, used by PII discovery) and inside free text
 * (ecrm.pii_find, ecrm.redact_text).
 *
 * Recognisers prefer precision: a card number must pass Luhn, an IBAN its
 * country's length and mod 97, a phone number inside text needs a "+" or
 * "00" prefix or at least nine digits, a name a word from names.c.
 */
#include "postgres.h"

#include <sys/socket.h>

#include "catalog/pg_type.h"
#include "ecrm.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pii.h"
#include "utils/array.h"
#include "utils/inet.h"

/* Luhn check of a string of n ASCII digits. */
bool
EcrmLuhnValid(const char *digits, int n)
{
	int			sum = 0;

	for (int i = 0; i < n; i++)
	{
		int			d = digits[n - 1 - i] - '0';

		if (i % 2 == 1)
		{
			d *= 2;
			if (d > 9)
				d -= 9;
		}
		sum += d;
	}
	return n > 0 && sum % 10 == 0;
}

/*
 * The digits of a card number written with optional single spaces or hyphens
 * between digits ("4111 1111-1111 1111"), into digits[ECRM_CARD_MAX_DIGITS + 1].
 * Returns how many, or -1 when the text holds anything else or too many digits.
 */
int
EcrmCardDigits(const char *s, int len, char *digits)
{
	int			n = 0;

	EcrmTrim(&s, &len);
	for (int i = 0; i < len; i++)
	{
		char		c = s[i];

		if (c >= '0' && c <= '9')
		{
			if (n == ECRM_CARD_MAX_DIGITS)
				return -1;
			digits[n++] = c;
		}
		else if ((c == ' ' || c == '-') && i > 0 && i + 1 < len &&
				 s[i - 1] >= '0' && s[i - 1] <= '9' && s[i + 1] >= '0' && s[i + 1] <= '9')
			continue;
		else
			return -1;
	}
	digits[n] = '\0';
	return n;
}

/* IBAN length per country (ISO 13616 registry), sorted by country code. */
typedef struct IbanCountry
{
	char		cc[3];
	int			len;
} IbanCountry;

static const IbanCountry iban_countries[] = {
	{"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16},
	{"BG", 22}, {"BH", 22}, {"BI", 27}, {"BR", 29}, {"BY", 28}, {"CH", 21}, {"CR", 22},
	{"CY", 28}, {"CZ", 24}, {"DE", 22}, {"DJ", 27}, {"DK", 18}, {"DO", 28}, {"EE", 20},
	{"EG", 29}, {"ES", 24}, {"FI", 18}, {"FK", 18}, {"FO", 18}, {"FR", 27}, {"GB", 22},
	{"GE", 22}, {"GI", 23}, {"GL", 18}, {"GR", 27}, {"GT", 28}, {"HR", 21}, {"HU", 28},
	{"IE", 22}, {"IL", 23}, {"IQ", 23}, {"IS", 26}, {"IT", 27}, {"JO", 30}, {"KW", 30},
	{"KZ", 20}, {"LB", 28}, {"LC", 32}, {"LI", 21}, {"LT", 20}, {"LU", 20}, {"LV", 21},
	{"LY", 25}, {"MC", 27}, {"MD", 24}, {"ME", 22}, {"MK", 19}, {"MN", 20}, {"MR", 27},
	{"MT", 31}, {"MU", 30}, {"NI", 28}, {"NL", 18}, {"NO", 15}, {"OM", 23}, {"PK", 24},
	{"PL", 28}, {"PS", 29}, {"PT", 25}, {"QA", 29}, {"RO", 24}, {"RS", 22}, {"RU", 33},
	{"SA", 24}, {"SC", 31}, {"SD", 18}, {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27},
	{"SO", 23}, {"ST", 25}, {"SV", 28}, {"TL", 23}, {"TN", 24}, {"TR", 26}, {"UA", 29},
	{"VA", 22}, {"VG", 24}, {"XK", 20},
};

static int
IbanLength(const char *cc)
{
	int			lo = 0,
				hi = lengthof(iban_countries) - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;
		int			cmp = strncmp(cc, iban_countries[mid].cc, 2);

		if (cmp == 0)
			return iban_countries[mid].len;
		if (cmp < 0)
			hi = mid - 1;
		else
			lo = mid + 1;
	}
	return 0;
}

/*
 * An IBAN without its spaces, upper-cased, into out[ECRM_IBAN_MAX + 1].
 * Returns its length, or -1 when it holds anything but letters, digits and
 * single spaces, or is too long.
 */
int
EcrmIbanCompact(const char *s, int len, char *out)
{
	int			n = 0;

	EcrmTrim(&s, &len);
	if (len >= 5 && pg_strncasecmp(s, "IBAN ", 5) == 0)
	{
		s += 5;
		len -= 5;
	}
	for (int i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c == ' ' && i > 0 && s[i - 1] != ' ')
			continue;
		if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')))
			return -1;
		if (n == ECRM_IBAN_MAX)
			return -1;
		out[n++] = pg_ascii_toupper(c);
	}
	out[n] = '\0';
	return n;
}

/* Whether a compact IBAN has its country's length and passes ISO 7064 mod 97-10. */
bool
EcrmIbanValid(const char *iban, int n)
{
	int			rem = 0;

	if (n < 15 || !(iban[0] >= 'A' && iban[0] <= 'Z' && iban[1] >= 'A' && iban[1] <= 'Z' &&
					iban[2] >= '0' && iban[2] <= '9' && iban[3] >= '0' && iban[3] <= '9'))
		return false;
	if (IbanLength(iban) != n)
		return false;
	/* the first four characters move to the end; letters count as 10..35 */
	for (int k = 0; k < n; k++)
	{
		char		c = iban[(k + 4) % n];

		if (c >= '0' && c <= '9')
			rem = (rem * 10 + (c - '0')) % 97;
		else
			rem = (rem * 100 + (c - 'A' + 10)) % 97;
	}
	return rem == 1;
}

static inline bool
IsAsciiAlnumChar(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static inline bool
IsDomainChar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		c == '-' || c >= 0x80;
}

/*
 * Whether s[0..len) (trimmed) is an email address: one "@", a local part of 1
 * to 64 bytes without white space, quotes or brackets, and a domain of at
 * least two labels of letters, digits and hyphens whose last label is not
 * all digits.  Returns the local part's length and where the domain starts.
 */
bool
EcrmEmailParts(const char *s, int len, int *local_len, int *domain_start)
{
	int			at = -1;
	int			labellen = 0;
	int			nlabels = 0;
	bool		tld_alpha = false;

	if (len < 3 || len > 320)
		return false;
	for (int i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c == '@')
		{
			if (at >= 0)
				return false;
			at = i;
		}
		else if (at < 0 && (c <= ' ' || c == 0x7f || strchr("\"(),:;<>[\\]", c) != NULL))
			return false;
	}
	if (at < 1 || at > 64 || s[0] == '.' || s[at - 1] == '.')
		return false;
	if (len - at - 1 > 253)
		return false;
	for (int i = at + 1; i <= len; i++)
	{
		unsigned char c = i < len ? (unsigned char) s[i] : '.';

		/* a trailing dot of the domain is allowed */
		if (c == '.' && i == len - 1)
			continue;
		if (c == '.')
		{
			if (labellen == 0 || s[i - 1] == '-')
				return false;
			nlabels++;
			labellen = 0;
			continue;
		}
		if (!IsDomainChar(c) || (labellen == 0 && c == '-') || ++labellen > 63)
			return false;
		if (labellen == 1)
			tld_alpha = false;
		if (!(c >= '0' && c <= '9'))
			tld_alpha = true;
	}
	if (nlabels < 2 || !tld_alpha)
		return false;
	*local_len = at;
	*domain_start = at + 1;
	return true;
}

/* Strict dotted-quad IPv4: four decimal octets 0..255, no leading zeros beyond "0". */
static bool
ParseIpv4(const char *s, int len, unsigned char *addr)
{
	int			octet = 0;
	int			ndigits = 0;
	int			value = 0;

	for (int i = 0; i <= len; i++)
	{
		char		c = i < len ? s[i] : '.';

		if (c >= '0' && c <= '9')
		{
			if (ndigits == 1 && value == 0)
				return false;
			value = value * 10 + (c - '0');
			if (++ndigits > 3 || value > 255)
				return false;
		}
		else if (c == '.' && ndigits > 0 && octet < 4)
		{
			addr[octet++] = (unsigned char) value;
			ndigits = 0;
			value = 0;
		}
		else
			return false;
	}
	return octet == 4;
}

/*
 * Parse an IP address ("192.0.2.1", "2001:db8::1") into family and bytes.
 * An IPv6 address goes through PostgreSQL's own parser after a shape check.
 */
bool
EcrmParseIp(const char *s, int len, int *family, unsigned char *addr)
{
	char		buf[64];
	int			colons = 0;

	EcrmTrim(&s, &len);
	if (len < 2 || len >= (int) sizeof(buf))
		return false;
	if (ParseIpv4(s, len, addr))
	{
		*family = PGSQL_AF_INET;
		return true;
	}
	for (int i = 0; i < len; i++)
	{
		char		c = s[i];

		if (c == ':')
			colons++;
		else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == '.'))
			return false;
	}
	if (colons < 2)
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (pg_inet_net_pton(PGSQL_AF_INET6, buf, addr, -1) != 128)
		return false;
	*family = PGSQL_AF_INET6;
	return true;
}

bool
EcrmLooksLikeIp(const char *s, int len)
{
	unsigned char addr[16];
	int			family;

	return EcrmParseIp(s, len, &family, addr);
}

/* ISO dates (1990-04-17) and day-first dates (17/04/1990, 17.04.1990) with a valid day. */
static bool
LooksLikeDate(const char *s, int len)
{
	int			y,
				m,
				d;
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

#define DIG(k) (s[k] >= '0' && s[k] <= '9')
#define NUM2(k) ((s[k] - '0') * 10 + (s[(k) + 1] - '0'))
	if (len != 10)
		return false;
	if (DIG(0) && DIG(1) && DIG(2) && DIG(3) && s[4] == '-' && DIG(5) && DIG(6) && s[7] == '-' && DIG(8) && DIG(9))
	{
		y = NUM2(0) * 100 + NUM2(2);
		m = NUM2(5);
		d = NUM2(8);
	}
	else if (DIG(0) && DIG(1) && (s[2] == '/' || s[2] == '.') && DIG(3) && DIG(4) && s[5] == s[2] &&
			 DIG(6) && DIG(7) && DIG(8) && DIG(9))
	{
		d = NUM2(0);
		m = NUM2(3);
		y = NUM2(6) * 100 + NUM2(8);
	}
	else
		return false;
#undef DIG
#undef NUM2
	return y >= 1800 && y <= 2200 && m >= 1 && m <= 12 && d >= 1 && d <= mdays[m - 1];
}

/* A phone number written as one value: "+44 20 7946 0958", "0044 ...", "(555) 123-4567". */
static bool
LooksLikePhone(const char *s, int len)
{
	int			ndigits = 0;
	int			nsep = 0;

	if (len == 0)
		return false;
	if (s[0] == '+' || (len > 2 && s[0] == '0' && s[1] == '0'))
	{
		char	   *e164 = EcrmNormalizePhone(s, len, NULL);

		if (e164 == NULL)
			return false;
		pfree(e164);
		return true;
	}
	for (int i = 0; i < len; i++)
	{
		char		c = s[i];

		if (c >= '0' && c <= '9')
			ndigits++;
		else if (c == ' ' || c == '-' || c == '.' || c == '(' || c == ')' || c == '/')
			nsep++;
		else
			return false;
	}
	return ndigits >= 7 && ndigits <= 15 && nsep > 0 && s[0] != '-' && s[len - 1] != '-';
}

/* Length of the letter at s (ASCII or a multibyte character), 0 when it is not one. */
static inline int
LetterLength(const char *s, int len)
{
	unsigned char c = (unsigned char) *s;

	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return 1;
	if (c >= 0x80)
	{
		int			l = pg_mblen(s);

		return l <= len ? l : 0;
	}
	return 0;
}

/*
 * A person's name: one to four words of letters (with inner hyphens and
 * apostrophes), at least one of them a common given name or surname.
 */
static bool
LooksLikeName(const char *s, int len)
{
	int			words = 0;
	bool		known = false;
	int			i = 0;

	while (i < len)
	{
		int			start = i;

		while (i < len)
		{
			int			l = LetterLength(s + i, len - i);

			if (l > 0)
				i += l;
			else if ((s[i] == '-' || s[i] == '\'') && i > start && i + 1 < len && LetterLength(s + i + 1, len - i - 1) > 0)
				i++;
			else
				break;
		}
		if (i == start)
			return false;
		if (++words > 4)
			return false;
		if (!known && EcrmIsCommonName(s + start, i - start))
			known = true;
		if (i < len)
		{
			if (s[i] != ' ')
				return false;
			while (i < len && s[i] == ' ')
				i++;
		}
	}
	return words > 0 && known;
}

/*
 * The kind of personal data a whole value is: email, ip, iban, card, phone,
 * date or name; NULL when none.
 */
static const char *
PiiKind(const char *s, int len)
{
	char		buf[ECRM_IBAN_MAX + 1];
	int			n,
				local_len,
				domain_start;

	EcrmTrim(&s, &len);
	if (len == 0 || len > 1000)
		return NULL;
	if (memchr(s, '@', len) != NULL)
		return EcrmEmailParts(s, len, &local_len, &domain_start) ? "email" : NULL;
	if (EcrmLooksLikeIp(s, len))
		return "ip";
	n = EcrmIbanCompact(s, len, buf);
	if (n >= 15 && EcrmIbanValid(buf, n))
		return "iban";
	n = EcrmCardDigits(s, len, buf);
	if (n >= 13 && EcrmLuhnValid(buf, n) && !(s[0] == '0' && s[1] == '0'))
		return "card";
	if (LooksLikeDate(s, len))
		return "date";
	/* 31/02/1990: the shape of a date, not a phone number */
	if (len == 10 && (s[2] == '/' || s[2] == '.' || s[2] == '-') && s[5] == s[2])
		return NULL;
	if (LooksLikePhone(s, len))
		return "phone";
	if (len <= 100 && LooksLikeName(s, len))
		return "name";
	return NULL;
}

/* Whether a text is a payment card number with a valid Luhn check digit. */
PG_FUNCTION_INFO_V1(ecrm_is_valid_card);
Datum
ecrm_is_valid_card(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	char		digits[ECRM_CARD_MAX_DIGITS + 1];
	int			n;

	n = EcrmCardDigits(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), digits);
	PG_RETURN_BOOL(n >= ECRM_CARD_MIN_DIGITS && EcrmLuhnValid(digits, n));
}

/* Whether a text is an IBAN with its country's length and a valid mod-97 check. */
PG_FUNCTION_INFO_V1(ecrm_is_valid_iban);
Datum
ecrm_is_valid_iban(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	char		buf[ECRM_IBAN_MAX + 1];
	int			n;

	n = EcrmIbanCompact(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), buf);
	PG_RETURN_BOOL(n > 0 && EcrmIbanValid(buf, n));
}

/* The kind of personal data a value is (email, ip, iban, card, phone, date, name) or NULL. */
PG_FUNCTION_INFO_V1(ecrm_pii_kind);
Datum
ecrm_pii_kind(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	const char *kind;

	kind = PiiKind(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	if (kind == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(kind));
}

/*
 * Free text: find the personal data inside.  The scanner walks white-space
 * separated words; a word is trimmed of surrounding punctuation and tested as
 * an email, IP or IBAN; a run of words made of digits (and phone punctuation)
 * is tested, longest first, as an IBAN, card number or phone number.
 */
enum
{
	FOUND_EMAIL = 1 << 0,
	FOUND_PHONE = 1 << 1,
	FOUND_CARD = 1 << 2,
	FOUND_IBAN = 1 << 3,
	FOUND_IP = 1 << 4,
};

static const char *const found_names[] = {"email", "phone", "card", "iban", "ip"};

static inline bool
IsSpace(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static inline bool
IsOpenPunct(char c)
{
	return c == '(' || c == '<' || c == '[' || c == '"' || c == '\'';
}

static inline bool
IsClosePunct(char c)
{
	return c == ')' || c == '>' || c == ']' || c == '"' || c == '\'' || c == '.' ||
		c == ',' || c == ';' || c == ':' || c == '!' || c == '?';
}

/* A word that can continue a number: digits with phone punctuation, or an IBAN group. */
static bool
IsNumberWord(const char *s, int len, bool iban)
{
	bool		digit = false;

	for (int i = 0; i < len; i++)
	{
		char		c = s[i];

		if (c >= '0' && c <= '9')
			digit = true;
		else if (iban && ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')) && len <= 4)
			continue;
		else if (!(c == '-' || c == '(' || c == ')' || c == '.' || c == '/' || (c == '+' && i == 0)))
			return false;
	}
	return digit || (iban && len > 0);
}

/* Which kind of number s[0..len) is (one FOUND_ flag), or 0. */
static int
ClassifyNumber(const char *s, int len)
{
	char		buf[ECRM_IBAN_MAX + 1];
	char		digits[16];
	int			n = 0;

	/* trailing punctuation belongs to the sentence */
	while (len > 0 && IsClosePunct(s[len - 1]))
		len--;
	if (len == 0)
		return 0;
	if (((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z')))
	{
		n = EcrmIbanCompact(s, len, buf);
		return (n >= 15 && EcrmIbanValid(buf, n)) ? FOUND_IBAN : 0;
	}
	if (s[0] != '+')
	{
		/* card: 13-19 digits in groups, Luhn */
		int			nd = 0;
		bool		ok = true;

		for (int i = 0; i < len && ok; i++)
		{
			if (s[i] >= '0' && s[i] <= '9')
			{
				if (nd == ECRM_CARD_MAX_DIGITS)
					ok = false;
				else
					buf[nd++] = s[i];
			}
			else if (!(s[i] == ' ' || s[i] == '-'))
				ok = false;
		}
		if (ok && nd >= 13 && EcrmLuhnValid(buf, nd))
			return FOUND_CARD;
	}
	/* phone: +/00 and 8-15 digits, or at least 9 digits in a phone-like shape */
	n = 0;
	for (int i = 0; i < len; i++)
	{
		if (s[i] >= '0' && s[i] <= '9')
		{
			if (n == 15)
				return 0;
			digits[n++] = s[i];
		}
	}
	if (s[0] == '+' || (n > 2 && digits[0] == '0' && digits[1] == '0'))
		return (n >= 10 && n <= 17) ? FOUND_PHONE : 0;
	if (n >= 9 && n <= 13)
		return FOUND_PHONE;
	return 0;
}

/*
 * Scan text; with out != NULL write it with every finding replaced by
 * "[kind]".  Returns the FOUND_ flags of what was found.
 */
static int
ScanText(const char *s, int len, StringInfo out)
{
	int			found = 0;
	int			copied = 0;		/* s[0..copied) is in out */
	int			i = 0;

	while (i < len)
	{
		int			ws,
					we,
					a,
					b,
					flag = 0,
					span_end = 0;

		CHECK_FOR_INTERRUPTS();
		while (i < len && IsSpace(s[i]))
			i++;
		if (i >= len)
			break;
		ws = i;
		while (i < len && !IsSpace(s[i]))
			i++;
		we = i;

		/* the word without surrounding punctuation */
		a = ws;
		b = we;
		while (a < b && IsOpenPunct(s[a]))
			a++;
		while (b > a && IsClosePunct(s[b - 1]))
			b--;
		if (b > a)
		{
			int			local_len,
						domain_start;

			if (memchr(s + a, '@', b - a) != NULL && EcrmEmailParts(s + a, b - a, &local_len, &domain_start))
				flag = FOUND_EMAIL;
			else if (EcrmLooksLikeIp(s + a, b - a))
				flag = FOUND_IP;
			if (flag)
				span_end = b;
		}
		if (!flag && b > a && (IsNumberWord(s + a, b - a, false) ||
							   (b - a >= 4 && IsNumberWord(s + a, b - a, true))))
		{
			bool		iban = (s[a] >= 'A' && s[a] <= 'Z') || (s[a] >= 'a' && s[a] <= 'z');
			int			ends[12];
			int			nwords = 0;
			int			j = we;

			/* gather up to 12 words that can continue the number */
			ends[nwords++] = we;
			while (nwords < (int) lengthof(ends))
			{
				int			k = j,
							e;

				while (k < len && (s[k] == ' ' || s[k] == '\t'))
					k++;
				if (k == j || k >= len)
					break;
				e = k;
				while (e < len && !IsSpace(s[e]))
					e++;
				if (!IsNumberWord(s + k, e - k, iban))
				{
					/* a last group followed by punctuation still counts */
					int			e2 = e;

					while (e2 > k && IsClosePunct(s[e2 - 1]))
						e2--;
					if (e2 > k && IsNumberWord(s + k, e2 - k, iban))
						ends[nwords++] = e2;
					break;
				}
				ends[nwords++] = e;
				j = e;
			}
			/* longest run first */
			for (int w = nwords - 1; w >= 0 && !flag; w--)
			{
				flag = ClassifyNumber(s + a, ends[w] - a);
				if (flag)
				{
					span_end = ends[w];
					while (span_end > a && IsClosePunct(s[span_end - 1]))
						span_end--;
				}
			}
		}
		if (flag)
		{
			found |= flag;
			if (out)
			{
				appendBinaryStringInfo(out, s + copied, a - copied);
				for (int k = 0; k < (int) lengthof(found_names); k++)
					if (flag == (1 << k))
						appendStringInfo(out, "[%s]", found_names[k]);
				copied = span_end;
			}
			i = Max(span_end, we);
		}
	}
	if (out)
		appendBinaryStringInfo(out, s + copied, len - copied);
	return found;
}

/* Free text with emails, phone numbers, card numbers, IBANs and IPs replaced by [email] etc. */
PG_FUNCTION_INFO_V1(ecrm_redact_text);
Datum
ecrm_redact_text(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	StringInfoData out;

	EcrmCheckFieldLength(t, "text");
	initStringInfo(&out);
	ScanText(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &out);
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out.data, out.len));
}

/*
 * Whether a value is personal data or holds some (ecrm.pii_kind or
 * ecrm.pii_find would say so): for masking code that checks values it keeps.
 */
bool
EcrmHoldsPii(const char *s, int len)
{
	return PiiKind(s, len) != NULL || ScanText(s, len, NULL) != 0;
}

/* The kinds of personal data found inside free text, as a text array (empty when none). */
PG_FUNCTION_INFO_V1(ecrm_pii_find);
Datum
ecrm_pii_find(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	Datum		kinds[lengthof(found_names)];
	int			n = 0;
	int			found;

	EcrmCheckFieldLength(t, "text");
	found = ScanText(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), NULL);
	for (int k = 0; k < (int) lengthof(found_names); k++)
		if (found & (1 << k))
			kinds[n++] = CStringGetTextDatum(found_names[k]);
	PG_RETURN_ARRAYTYPE_P(construct_array(kinds, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * Check digits of identifiers such as national ids: 'luhn' (Canadian SIN,
 * Swedish personnummer), 'mod97' (the last two digits are 97 minus the rest
 * mod 97: French NIR, Belgian national number), 'mod11' (Dutch BSN, the
 * "elfproef"), 'dni' (Spanish DNI and NIE control letter).  Spaces, hyphens,
 * dots and slashes between characters are ignored.
 */
PG_FUNCTION_INFO_V1(ecrm_check_digits_valid);
Datum
ecrm_check_digits_valid(PG_FUNCTION_ARGS)
{
	static const char *const algos[] = {"luhn", "mod97", "mod11", "dni", NULL};
	int			algo = EcrmOptionIndex(fcinfo, 1, "check_digits_valid", "algorithm", algos,
									   "luhn, mod97, mod11, dni");
	text	   *t;
	const char *s;
	int			len;
	char		c[32];
	int			n = 0;
	int			ndigits = 0;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	t = PG_GETARG_TEXT_PP(0);
	s = VARDATA_ANY(t);
	len = VARSIZE_ANY_EXHDR(t);
	EcrmTrim(&s, &len);
	for (int i = 0; i < len; i++)
	{
		char		ch = s[i];

		if (ch == ' ' || ch == '-' || ch == '.' || ch == '/')
			continue;
		if (!IsAsciiAlnumChar(ch) || n == (int) sizeof(c) - 1)
			PG_RETURN_BOOL(false);
		c[n++] = pg_ascii_toupper((unsigned char) ch);
		if (ch >= '0' && ch <= '9')
			ndigits++;
	}
	c[n] = '\0';
	if (n == 0)
		PG_RETURN_BOOL(false);

	if (algo == 0)
		PG_RETURN_BOOL(ndigits == n && EcrmLuhnValid(c, n));
	if (algo == 1)
	{
		int			rem = 0;

		if (ndigits != n || n < 3 || n > 20)
			PG_RETURN_BOOL(false);
		for (int i = 0; i < n - 2; i++)
			rem = (rem * 10 + (c[i] - '0')) % 97;
		PG_RETURN_BOOL(97 - rem == (c[n - 2] - '0') * 10 + (c[n - 1] - '0'));
	}
	if (algo == 2)
	{
		int			sum = 0;

		if (ndigits != n || n != 9)
			PG_RETURN_BOOL(false);
		for (int i = 0; i < 8; i++)
			sum += (c[i] - '0') * (9 - i);
		sum -= c[8] - '0';
		PG_RETURN_BOOL(sum % 11 == 0 && sum != 0);
	}
	/* dni: an optional X, Y or Z (0, 1, 2), seven or eight digits, the control letter */
	{
		static const char letters[] = "TRWAGMYFPDXBNJZSQVHLCKE";
		int64		num = 0;
		int			start = 0;

		if (n < 8 || n > 9 || c[n - 1] < 'A' || c[n - 1] > 'Z')
			PG_RETURN_BOOL(false);
		if (c[0] == 'X' || c[0] == 'Y' || c[0] == 'Z')
		{
			num = c[0] - 'X';
			start = 1;
		}
		for (int i = start; i < n - 1; i++)
		{
			if (c[i] < '0' || c[i] > '9')
				PG_RETURN_BOOL(false);
			num = num * 10 + (c[i] - '0');
		}
		PG_RETURN_BOOL(n - 1 - start >= 7 && letters[num % 23] == c[n - 1]);
	}
}
