/*
 * fuzz-hivelog.c - libFuzzer harness for the regf base block, the
 * .LOG1/.LOG2 replay (hive-log.c) and compaction (hive-compact.c).  The
 * input is split in three: the primary hive and the two logs, their
 * lengths in the first 8 bytes.  What compaction writes must compact
 * again without complaint, keeping its size: the walk accepts its own
 * output, and its layout is stable.
 */
#include <config.h>

#include <stdint.h>
#include <stdlib.h>

#include "hive.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *log[2];
	size_t loglen[2], plen, l1, l2;
	struct hive_hdr h;
	const char *why;
	uint8_t *buf;

	if (size < 8)
		return 0;
	l1 = get_le32(data) % (size + 1);
	l2 = get_le32(data + 4) % (size + 1);
	data += 8;
	size -= 8;
	if (l1 > size)
		l1 = size;
	if (l2 > size - l1)
		l2 = size - l1;
	plen = size - l1 - l2;
	buf = malloc(plen ? plen : 1);
	memcpy(buf, data + l1 + l2, plen);
	log[0] = l1 ? data : NULL;
	loglen[0] = l1;
	log[1] = l2 ? data + l1 : NULL;
	loglen[1] = l2;
	if (hive_header(buf, plen, &h) == 0)
		hive_log_replay(&buf, &plen, log, loglen, "fuzz");
	if (hive_compact(&buf, &plen, &why) > 0) {
		size_t once = plen;

		if (hive_compact(&buf, &plen, &why) == 0 && why)
			abort();	/* our own output refused */
		if (plen > once)
			abort();
	}
	free(buf);
	gp_error_clear();
	gp_warnings_clear();
	return 0;
}
