/* Unit tests: CRC-32C, GUIDs, UTF-16, error recording, 8.3 aliases. */
#include <config.h>

#include <errno.h>
#include <stdlib.h>

#include "ntfs.h"
#include "util.h"
#include "check.h"

/* The n-th alias ntfs.c would try for name is want. */
#define ALIAS(name, n, want) do {					\
	char a_[24];							\
									\
	ntfs_short_name(name, n, a_);					\
	if (strcmp(a_, want) != 0) {					\
		fprintf(stderr, "%s:%d: alias %u of '%s' is %s, "	\
		    "expected %s\n", __FILE__, __LINE__, (unsigned)(n),	\
		    name, a_, want);					\
		check_failures++;					\
	}								\
} while (0)

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

	/* The first message wins; context is prepended once. */
	error_clear();
	error_setc(GP_EXIT_CORRUPT, EINVAL, "inner cause");
	error_set(EIO, "outer must not replace");
	CHECK(strcmp(gp_error_message(), "inner cause") == 0);
	CHECK(gp_error_code() == GP_EXIT_CORRUPT);
	CHECK(errno == EIO);
	error_prefix("file.vhdx");
	CHECK(strcmp(gp_error_message(), "file.vhdx: inner cause") == 0);
	error_prefix("file.vhdx");
	CHECK(strcmp(gp_error_message(), "file.vhdx: inner cause") == 0);
	error_clear();
	CHECK(!error_pending() && gp_error_message()[0] == '\0');

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
	CHECK(ntfs_is_short_name("NVAPI.DLL") && ntfs_is_short_name("nvapi.dll"));
	CHECK(!ntfs_is_short_name("a b.txt") && !ntfs_is_short_name(".hidden"));
	CHECK_DONE();
}
