/*
 * guest.c - finding the Windows installation on a disk: the NTFS volume
 * that holds Windows\System32\config\SYSTEM (matched case-insensitively,
 * never by partition index), its build from the SOFTWARE hive, and the
 * state of its volume.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "hive.h"
#include "util.h"

#define SYSTEM_HIVE "Windows/System32/config/SYSTEM"
#define SOFTWARE_HIVE "Windows/System32/config/SOFTWARE"
#define CURRENT_VERSION "Microsoft\\Windows NT\\CurrentVersion"

static char *
tmp_path(void)
{
	const char *dir = getenv("TMPDIR");
	char *p = xasprintf("%s/gpupv-prep-hive.XXXXXX", dir && *dir ? dir :
	    "/tmp");
	int fd = mkstemp(p);

	if (fd < 0) {
		error_set(errno, "cannot create a temporary file in %s: %s",
		    dir && *dir ? dir : "/tmp", strerror(errno));
		free(p);
		return NULL;
	}
	close(fd);
	return p;
}

/* Build number and product name from the SOFTWARE hive, when present. */
static void
read_build(gp_volume *vol, struct gp_windows *w)
{
	struct gp_stat st;
	char *tmp;

	if (gp_volume_stat(vol, SOFTWARE_HIVE, &st) < 0 || st.is_dir) {
		gp_error_clear();
		return;
	}
	tmp = tmp_path();
	if (!tmp) {
		warn_add("%s", gp_error_message());
		gp_error_clear();
		return;
	}
	if (gp_volume_extract(vol, SOFTWARE_HIVE, tmp) == 0) {
		w->build = gp_hive_get_string(tmp, CURRENT_VERSION,
		    "CurrentBuildNumber");
		if (!w->build)
			w->build = gp_hive_get_string(tmp, CURRENT_VERSION,
			    "CurrentBuild");
		w->product = gp_hive_get_string(tmp, CURRENT_VERSION,
		    "ProductName");
	}
	if (error_pending())
		warn_add("cannot read the guest's build: %s", gp_error_message());
	gp_error_clear();
	unlink(tmp);
	free(tmp);
}

struct head {
	uint8_t buf[4096];
	size_t len;
};

static int
head_cb(void *ctx, const void *buf, size_t len)
{
	struct head *h = ctx;
	size_t n = MIN(len, sizeof(h->buf) - h->len);

	memcpy(h->buf + h->len, buf, n);
	h->len += n;
	return h->len == sizeof(h->buf) ? -1 : 0;
}

/* Whether a hive in System32\config is clean, as stage would judge it:
 * its base block's sequence numbers, and its .LOG1/.LOG2 when dirty. */
static const char *
hive_state(gp_volume *vol, const char *path)
{
	struct head h = { .len = 0 };
	struct hive_hdr hh;
	struct gp_stat st;
	const char *state = "dirty-no-logs";
	int k;

	if (gp_volume_stat(vol, path, &st) < 0 || st.is_dir) {
		gp_error_clear();
		return NULL;
	}
	gp_volume_read_cb(vol, path, head_cb, &h);
	gp_error_clear();
	if (hive_header(h.buf, h.len, &hh) < 0) {
		gp_error_clear();
		return "unreadable";
	}
	if (!hive_dirty(&hh))
		return "clean";
	for (k = 1; k <= 2; k++) {
		char *log = xasprintf("%s.LOG%d", path, k);

		if (gp_volume_stat(vol, log, &st) == 0 && !st.is_dir &&
		    st.size > 512)
			state = "dirty";
		gp_error_clear();
		free(log);
	}
	return state;
}

int
gp_windows_find(gp_image *img, struct gp_partition_table *pt, int partition,
    struct gp_windows *w)
{
	struct gp_image_info info;
	unsigned i;
	bool found = false, forced_found = false;
	int bitlocker = -1;

	memset(w, 0, sizeof(*w));
	gp_image_get_info(img, &info);
	for (i = 0; i < pt->count; i++) {
		struct gp_partition *p = &pt->parts[i];
		struct gp_stat st;
		gp_volume *vol;
		bool has_system;

		if (partition >= 0 && p->index != (unsigned)partition)
			continue;
		forced_found = true;
		if (strcmp(p->filesystem, "bitlocker") == 0) {
			if (bitlocker < 0)
				bitlocker = (int)i;
			continue;
		}
		if (strcmp(p->filesystem, "ntfs") != 0)
			continue;
		vol = gp_volume_open(img, p->start, p->size, false);
		if (!vol) {
			warn_add("partition %u: %s", p->index,
			    gp_error_message());
			gp_error_clear();
			continue;
		}
		snprintf(p->label, sizeof(p->label), "%s",
		    gp_volume_label(vol));
		has_system = gp_volume_stat(vol, SYSTEM_HIVE, &st) == 0 &&
		    !st.is_dir;
		gp_error_clear();
		if (has_system && found) {
			warn_add("partition %u also holds a Windows "
			    "installation; using partition %u (choose with "
			    "--partition N)", p->index, w->partition);
		} else if (has_system) {
			char *root = gp_volume_realpath(vol, "Windows"), *c;

			found = true;
			w->partition = p->index;
			w->slot = i;
			w->system_root = xasprintf("%s", root ? root :
			    "/Windows");
			for (c = w->system_root; *c; c++)
				if (*c == '/')
					*c = '\\';
			free(root);
			gp_error_clear();
			w->state = gp_volume_state(vol);
			read_build(vol, w);
			w->hive_state[0] = hive_state(vol, SYSTEM_HIVE);
			w->hive_state[1] = hive_state(vol, SOFTWARE_HIVE);
		}
		gp_volume_close(vol);
		gp_error_clear();
	}
	if (found)
		return 0;
	if (partition >= 0 && !forced_found) {
		error_setc(GP_EXIT_USAGE, ENOENT, "%s: no partition %d "
		    "(the table has %u)", info.path, partition, pt->count);
		return -1;
	}
	if (bitlocker >= 0) {
		w->partition = pt->parts[bitlocker].index;
		w->slot = (unsigned)bitlocker;
		w->state = GP_VOL_BITLOCKER;
		return 0;
	}
	if (partition >= 0)
		error_setc(GP_EXIT_NO_WINDOWS, ENOENT, "%s: partition %d holds "
		    "no Windows installation (no readable NTFS volume with "
		    "Windows\\System32\\config\\SYSTEM)", info.path, partition);
	else
		error_setc(GP_EXIT_NO_WINDOWS, ENOENT, "%s: no Windows "
		    "installation found (no NTFS volume holds "
		    "Windows\\System32\\config\\SYSTEM)", info.path);
	return -1;
}

void
gp_windows_free(struct gp_windows *w)
{
	free(w->system_root);
	free(w->build);
	free(w->product);
	memset(w, 0, sizeof(*w));
}
