/* Unit tests: CRC-32C, GUIDs, UTF-16, error recording, 8.3 aliases. */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "acl.h"
#include "winname.h"
#include "util.h"
#include "check.h"

/* The n-th alias ntfs.c would try for name is want. */
#define ALIAS(name, n, want) do {					\
	char a_[24];							\
									\
	win_short_name(name, n, a_);					\
	if (strcmp(a_, want) != 0) {					\
		fprintf(stderr, "%s:%d: alias %u of '%s' is %s, "	\
		    "expected %s\n", __FILE__, __LINE__, (unsigned)(n),	\
		    name, a_, want);					\
		check_failures++;					\
	}								\
} while (0)

/* What failed inside a scope stays there: a tolerated failure never
 * hides, replaces nor clears anyone else's error. */
static int
tolerated_then_real(void)
{
	struct gp_error e;

	error_try(&e);
	error_set(ENOENT, "tolerated: not there");
	CHECK(error_end(&e) && errno == ENOENT);
	error_setc(GP_EXIT_CORRUPT, EIO, "the real failure");
	return -1;
}

static void *
thread_records(void *arg)
{
	(void)arg;
	error_set(EAGAIN, "the other thread's failure");
	return NULL;
}

static void
test_scopes(void)
{
	struct gp_error e, inner;
	pthread_t th;

	/* A tolerated failure followed by a real one reports the real one. */
	gp_error_clear();
	CHECK(tolerated_then_real() < 0);
	CHECK(strcmp(gp_error_message(), "the real failure") == 0);
	CHECK(gp_error_code() == GP_EXIT_CORRUPT);

	/* A caller's recorded error survives a callee's tolerated one. */
	gp_error_clear();
	error_set(EPERM, "the caller's cause");
	error_try(&e);
	error_set(EINVAL, "inside");
	CHECK(error_end(&e));
	CHECK(strcmp(e.msg, "inside") == 0 && e.err == EINVAL);
	CHECK(strcmp(gp_error_message(), "the caller's cause") == 0);

	/* Nested: the inner scope's failure reaches the outer one only when
	 * handed on, with its class and errno. */
	gp_error_clear();
	error_try(&e);
	error_try(&inner);
	error_setc(GP_EXIT_PARENT, ENOENT, "parent missing");
	CHECK(error_end(&inner));
	CHECK(!e.set);
	CHECK(error_pass(&inner) == -1);
	CHECK(error_end(&e) && e.code == GP_EXIT_PARENT && e.err == ENOENT);
	CHECK(strcmp(e.msg, "parent missing") == 0);
	CHECK(gp_error_message()[0] == '\0');

	/* A scope with nothing in it reports nothing and leaves errno. */
	error_try(&e);
	errno = EEXIST;
	CHECK(!error_end(&e) && errno == EEXIST);
	CHECK(error_pass(&e) == -1 && gp_error_message()[0] == '\0');

	/* Another thread records into its own scope, never this one's. */
	CHECK(pthread_create(&th, NULL, thread_records, NULL) == 0);
	pthread_join(th, NULL);
	CHECK(gp_error_message()[0] == '\0');
}

int
main(void)
{
	guid_t g, h;
	char s[39];
	uint8_t u16[] = { 'W', 0, 'i', 0, 0x3d, 0xd8, 0x00, 0xde, 0xe9, 0, 0, 0 };
	char *t;

	/* CRC-32C check value (RFC 3720 B.4 and the usual "123456789"). */
	CHECK_EQ_U(crc32c(0, "123456789", 9), 0xE3069283u);
	{
		uint8_t zeros[32] = { 0 };

		CHECK_EQ_U(crc32c(0, zeros, 32), 0x8A9136AAu);
	}
	/* Incremental equals one-shot. */
	CHECK_EQ_U(crc32c(crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);

	/* GUID text <-> on-disk bytes (Data1..3 little-endian). */
	CHECK(guid_parse(&g, "{2DC27766-F623-4200-9D64-115E9BFD4A08}") == 0);
	CHECK(g.b[0] == 0x66 && g.b[3] == 0x2d && g.b[4] == 0x23 &&
	    g.b[6] == 0x00 && g.b[7] == 0x42 && g.b[8] == 0x9d);
	guid_format(&g, s);
	CHECK(strcmp(s, "{2DC27766-F623-4200-9D64-115E9BFD4A08}") == 0);
	CHECK(guid_parse(&h, "2dc27766-f623-4200-9d64-115e9bfd4a08") == 0);
	CHECK(guid_eq(&g, &h));
	CHECK(guid_parse(&h, "{2DC27766-F623-4200-9D64-115E9BFD4A0}") < 0);
	CHECK(guid_parse(&h, "{2DC27766-F623-4200-9D64-115E9BFD4A08") < 0);
	CHECK(guid_parse(&h, "zz") < 0);
	CHECK(guid_generate(&g) == 0 && guid_generate(&h) == 0);
	CHECK(!guid_eq(&g, &h));
	CHECK((g.b[7] >> 4) == 4 && (g.b[8] & 0xc0) == 0x80);

	/* UTF-16LE with a surrogate pair, stopping at NUL. */
	t = utf16_to_utf8(u16, 6, false);
	CHECK(strcmp(t, "Wi\xf0\x9f\x98\x80\xc3\xa9") == 0);
	free(t);
	/* A lone high surrogate becomes U+FFFD. */
	{
		uint8_t lone[] = { 0x3d, 0xd8, 'a', 0 };

		t = utf16_to_utf8(lone, 2, false);
		CHECK(strcmp(t, "\xef\xbf\xbd" "a") == 0);
		free(t);
	}

	/* The first message wins, with its errno; context is prepended
	 * once. */
	gp_error_clear();
	error_setc(GP_EXIT_CORRUPT, EINVAL, "inner cause");
	error_set(EIO, "outer must not replace");
	CHECK(strcmp(gp_error_message(), "inner cause") == 0);
	CHECK(gp_error_code() == GP_EXIT_CORRUPT);
	CHECK(errno == EINVAL);
	error_prefix("file.vhdx");
	CHECK(strcmp(gp_error_message(), "file.vhdx: inner cause") == 0);
	error_prefix("file.vhdx");
	CHECK(strcmp(gp_error_message(), "file.vhdx: inner cause") == 0);
	gp_error_clear();
	CHECK(gp_error_message()[0] == '\0');

	test_scopes();

	/* Paths. */
	t = path_dirname("/a/b/c.vhdx");
	CHECK(strcmp(t, "/a/b") == 0);
	free(t);
	t = path_dirname("c.vhdx");
	CHECK(strcmp(t, ".") == 0);
	free(t);
	t = path_join("/a", "b/c");
	CHECK(strcmp(t, "/a/b/c") == 0);
	free(t);
	CHECK(strcmp(path_basename("/x/y.vhd"), "y.vhd") == 0);

	/*
	 * 8.3 aliases as Windows forms them (the rules and the first
	 * checksum as documented for RtlGenerate8dot3Name and worked out
	 * from Windows' own output): "~1" to "~4" on six characters, then
	 * two characters and the long name's checksum.
	 */
	ALIAS("SomeStuff.aspx", 1, "SOMEST~1.ASP");
	ALIAS("SomeStuff.aspx", 4, "SOMEST~4.ASP");
	ALIAS("SomeStuff.aspx", 5, "SOBC84~1.ASP");
	ALIAS("SomeStuff.aspx", 6, "SOBC84~2.ASP");
	ALIAS("5+6 June Report.doc", 1, "5_6JUN~1.DOC");
	ALIAS("a.testing.file.bat", 1, "ATESTI~1.BAT");
	ALIAS("1+2+3 Hello World.exe", 1, "1_2_3H~1.EXE");
	ALIAS(".hidden", 1, "HIDDEN~1");
	ALIAS("..twice.config", 2, "TWICE~2.CON");
	ALIAS("ab cd", 1, "ABCD~1");
	/* One '_' per character outside ASCII, not per UTF-8 byte. */
	ALIAS("\xc3\x9c" "n" "\xc3\xaf" "c" "\xc3\xb6" "d" "\xc3\xa9"
	    " \xe2\x9c\x93.txt", 1, "_N_C_D~1.TXT");
	ALIAS("nvidia-smi.description.extension", 1, "NVIDIA~1.EXT");
	CHECK(win_is_short_name("NVAPI.DLL") && win_is_short_name("nvapi.dll"));
	CHECK(!win_is_short_name("a b.txt") && !win_is_short_name(".hidden"));

	/*
	 * Inheritance (acl.c) on a parent whose DACL is auto-inherited:
	 *   0 (A;OICI;FA;;;SY)       to files and folders as it is
	 *   1 (A;OICIIO;GA;;;CO)     CREATOR OWNER with a generic right
	 *   2 (A;OI;0x1200a9;;;BU)   files only
	 *   3 (A;CINP;0x4;;;BU)      this folder's subfolders, one level
	 */
	{
		static const uint8_t sy[12] = { 1, 1, 0, 0, 0, 0, 0, 5, 18 };
		static const uint8_t co[12] = { 1, 1, 0, 0, 0, 0, 0, 3, 0 };
		static const uint8_t bu[16] = { 1, 2, 0, 0, 0, 0, 0, 5, 32, 0,
		    0, 0, 0x21, 2 };
		static const struct { uint8_t flags; uint32_t mask;
		    const uint8_t *sid; size_t slen; } in[4] = {
			{ 0x03, 0x1F01FF, sy, 12 }, { 0x0B, 0x10000000, co, 12 },
			{ 0x01, 0x1200A9, bu, 16 }, { 0x06, 0x4, bu, 16 } };
		uint8_t p[256] = { 1, 0, 0x04, 0x84 }, *c;
		size_t at = 28, len, i;

		for (i = 0; i < 4; i++) {
			size_t sz = 8 + in[i].slen;

			p[at + 1] = in[i].flags;
			p[at + 2] = (uint8_t)sz;
			memcpy(p + at + 4, &in[i].mask, 4);
			memcpy(p + at + 8, in[i].sid, in[i].slen);
			at += sz;
		}
		p[16] = 20;			/* DACL at 20 */
		p[20] = 2;
		p[22] = (uint8_t)(at - 20);
		p[24] = 4;
		p[4] = (uint8_t)at;		/* owner, group: SYSTEM */
		memcpy(p + at, sy, 12);
		p[8] = (uint8_t)(at + 12);
		memcpy(p + at + 12, sy, 12);
		at += 24;
		/* A file: SY as it is, CO -> Administrators with FILE_ALL,
		 * BU read; all marked inherited (0x10). */
		c = acl_inherit(p, at, false, acl_sid_administrators,
		    acl_sid_administrators, &len);
		CHECK(c != NULL && c[24] == 3);
		/* ACEs at 28 (20 bytes), 48 (24), 72. */
		CHECK(c && c[29] == 0x10 && c[49] == 0x10 && c[73] == 0x10);
		CHECK(c && get_le32(c + 48 + 4) == 0x1F01FF &&
		    memcmp(c + 48 + 8, acl_sid_administrators, 16) == 0);
		CHECK(c && (c[2] | c[3] << 8) == 0x8404);
		free(c);
		/* A folder: SY with OICI; CO split into Administrators FA
		 * (effective) and CO GA (OICIIO); BU files-only as OIIO; the
		 * no-propagate ACE effective only, without CI. */
		c = acl_inherit(p, at, true, acl_sid_administrators,
		    acl_sid_administrators, &len);
		CHECK(c != NULL && c[24] == 5);
		if (c && c[24] == 5) {
			const uint8_t *a = c + 28;

			CHECK(a[1] == 0x13);		/* ID OI CI */
			a += a[2];
			CHECK(a[1] == 0x10 && get_le32(a + 4) == 0x1F01FF);
			a += a[2];
			CHECK(a[1] == 0x1B && get_le32(a + 4) == 0x10000000 &&
			    memcmp(a + 8, co, 12) == 0);
			a += a[2];
			CHECK(a[1] == 0x19);		/* ID IO OI */
			a += a[2];
			CHECK(a[1] == 0x10 && get_le32(a + 4) == 0x4);
		}
		free(c);
		/* Not a descriptor: refused. */
		CHECK(acl_inherit(p, 10, false, acl_sid_administrators,
		    acl_sid_administrators, &len) == NULL);
	}
	CHECK_DONE();
}
