/*
 * guest.c - finding the Windows installation on a disk: the NTFS volume
 * that holds Windows\System32\config\SYSTEM (matched case-insensitively,
 * never by partition index), its build from the SOFTWARE hive, and the
 * state of its volume.
 */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
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
	struct gp_error e;
	struct gp_stat st;
	char *tmp, *root;
	int r;

	error_try(&e);
	r = gp_volume_stat(vol, SOFTWARE_HIVE, &st);
	if (error_end(&e) || r < 0 || st.is_dir)
		return;		/* no SOFTWARE hive: no build to show */
	error_try(&e);
	tmp = tmp_path();
	if (error_end(&e)) {
		warn_add("%s", e.msg);
		return;
	}
	error_try(&e);
	if (gp_volume_extract(vol, SOFTWARE_HIVE, tmp) == 0) {
		w->build = gp_hive_get_string(tmp, CURRENT_VERSION,
		    "CurrentBuildNumber");
		if (!w->build)
			w->build = gp_hive_get_string(tmp, CURRENT_VERSION,
			    "CurrentBuild");
		w->product = gp_hive_get_string(tmp, CURRENT_VERSION,
		    "ProductName");
		root = gp_hive_get_string(tmp, CURRENT_VERSION, "SystemRoot");
		/* "C:\\WINDOWS": the drive the guest sees itself on. */
		if (root && isalpha((unsigned char)root[0]) && root[1] == ':')
			w->drive = (char)toupper((unsigned char)root[0]);
		free(root);
	}
	/* The hive's name in the guest, not the copy's. */
	error_rename(tmp, SOFTWARE_HIVE);
	if (error_end(&e))
		warn_add("cannot read the guest's build: %s", e.msg);
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
	struct gp_error e;
	const char *state = "dirty-no-logs";
	int k, r;

	/* A look for inspect: whatever fails here only shapes the answer. */
	error_try(&e);
	r = gp_volume_stat(vol, path, &st);
	if (r < 0 || st.is_dir) {
		error_end(&e);
		return NULL;
	}
	/* head_cb stops the read at 4 KiB: its failure is expected. */
	gp_volume_read_cb(vol, path, head_cb, &h);
	r = hive_header(h.buf, h.len, &hh);
	if (r == 0 && hive_dirty(&hh))
		for (k = 1; k <= 2; k++) {
			char *log = xasprintf("%s.LOG%d", path, k);

			if (gp_volume_stat(vol, log, &st) == 0 && !st.is_dir &&
			    st.size > 512)
				state = "dirty";
			free(log);
		}
	error_end(&e);
	if (r < 0)
		return "unreadable";
	return hive_dirty(&hh) ? state : "clean";
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
		struct gp_error e;
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
		/* Each partition is a look: what fails in it is a warning
		 * or nothing, and never the search's error. */
		error_try(&e);
		vol = gp_volume_open(img, p->start, p->size, false);
		if (!vol) {
			error_end(&e);
			warn_add("partition %u: %s", p->index, e.msg);
			continue;
		}
		snprintf(p->label, sizeof(p->label), "%s",
		    gp_volume_label(vol));
		has_system = gp_volume_stat(vol, SYSTEM_HIVE, &st) == 0 &&
		    !st.is_dir;
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
			w->state = gp_volume_state(vol);
			read_build(vol, w);
			w->hive_state[0] = hive_state(vol, SYSTEM_HIVE);
			w->hive_state[1] = hive_state(vol, SOFTWARE_HIVE);
		}
		gp_volume_close(vol);
		error_end(&e);
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

/* ---- Linux -------------------------------------------------------- */

#define OS_RELEASE_MAX	(64 * 1024)
#define MAX_KERNELS	64

/* A value as a terminal and JSON may show it: printable ASCII, at most
 * 200 bytes, others as '?'. */
static char *
printable(const char *s, size_t n)
{
	char *r;
	size_t i;

	if (n > 200)
		n = 200;
	r = xmalloc(n + 1);
	for (i = 0; i < n; i++)
		r[i] = (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f ?
		    s[i] : '?';
	r[n] = '\0';
	return r;
}

/* One os-release line "KEY=value" (value maybe quoted, with \-escapes
 * inside double quotes, as os-release(5) says). */
static void
os_release_line(struct gp_linux *l, const char *line, size_t len)
{
	static const struct { const char *key; size_t off; } keys[] = {
		{ "NAME", offsetof(struct gp_linux, name) },
		{ "VERSION_ID", offsetof(struct gp_linux, version_id) },
		{ "PRETTY_NAME", offsetof(struct gp_linux, pretty_name) },
		{ "ID", offsetof(struct gp_linux, id) },
	};
	const char *eq = memchr(line, '=', len);
	char buf[256];
	size_t k, i, o = 0;

	if (!eq)
		return;
	for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		char **dst = (char **)((char *)l + keys[k].off);
		const char *v = eq + 1;
		size_t vn = len - (size_t)(v - line);
		char q = 0;

		if ((size_t)(eq - line) != strlen(keys[k].key) ||
		    memcmp(line, keys[k].key, (size_t)(eq - line)) != 0)
			continue;
		if (vn && (*v == '"' || *v == '\'')) {
			q = *v++;
			vn--;
		}
		for (i = 0; i < vn && o < sizeof(buf) - 1; i++) {
			if (q && v[i] == q)
				break;
			if (q == '"' && v[i] == '\\' && i + 1 < vn)
				i++;
			buf[o++] = v[i];
		}
		free(*dst);
		*dst = printable(buf, o);
	}
}

static void
read_os_release(gp_volume *vol, struct gp_linux *l, const char *path)
{
	struct gp_error e;
	void *text;
	size_t len, i, start = 0;
	int r;

	error_try(&e);
	r = gp_volume_read(vol, path, OS_RELEASE_MAX, &text, &len);
	if (error_end(&e) || r < 0)
		return;		/* absent or unreadable: nothing to show */
	for (i = 0; i <= len; i++)
		if (i == len || ((char *)text)[i] == '\n') {
			os_release_line(l, (char *)text + start, i - start);
			start = i + 1;
		}
	free(text);
}

static int
kernel_cb(void *ctx, const char *name, const struct gp_stat *st)
{
	struct gp_linux *l = ctx;

	if (!st->is_dir || l->nkernels >= MAX_KERNELS)
		return 0;
	l->kernels = xrealloc(l->kernels, (l->nkernels + 1) * sizeof(char *));
	l->kernels[l->nkernels++] = printable(name, strlen(name));
	return 0;
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
read_linux(gp_volume *vol, struct gp_linux *l)
{
	struct gp_stat st;
	struct gp_error e;
	void *text;
	size_t len;

	read_os_release(vol, l, "etc/os-release");
	if (!l->name && !l->id)
		read_os_release(vol, l, "usr/lib/os-release");
	/* The kernels and the first-boot status are shown when readable. */
	error_try(&e);
	gp_volume_list(vol, "lib/modules", kernel_cb, l);
	if (l->nkernels)
		qsort(l->kernels, l->nkernels, sizeof(char *), str_cmp);
	if (gp_volume_stat(vol, GP_LINUX_STATUS, &st) == 0 && !st.is_dir &&
	    gp_volume_read(vol, GP_LINUX_STATUS, 4096, &text, &len) == 0) {
		char *nl = memchr(text, '\n', len);

		l->firstboot = printable(text, nl ? (size_t)(nl - (char *)text) :
		    len);
		free(text);
	}
	error_end(&e);
}

static bool
is_os_root(gp_volume *vol)
{
	struct gp_stat st;
	struct gp_error e;
	bool r;

	error_try(&e);
	r = (gp_volume_stat(vol, "etc/os-release", &st) == 0) ||
	    (gp_volume_stat(vol, "usr/lib/os-release", &st) == 0);
	error_end(&e);
	return r;
}

int
gp_linux_find(gp_image *img, struct gp_partition_table *pt, int partition,
    struct gp_linux *l)
{
	struct gp_image_info info;
	char other[256] = "", *bad = NULL;
	int bad_code = 0;
	unsigned i;
	bool found = false, forced_found = false;

	memset(l, 0, sizeof(*l));
	gp_image_get_info(img, &info);
	for (i = 0; i < pt->count; i++) {
		struct gp_partition *p = &pt->parts[i];
		const char *fs = p->filesystem;
		struct gp_error e;
		gp_volume *vol;

		if (partition >= 0 && p->index != (unsigned)partition)
			continue;
		forced_found = true;
		if (!strcmp(fs, "btrfs") || !strcmp(fs, "xfs") ||
		    !strcmp(fs, "lvm") || !strcmp(fs, "luks")) {
			size_t n = strlen(other);

			if (n < sizeof(other) - 64)
				snprintf(other + n, sizeof(other) - n,
				    "%spartition %u is %s", n ? ", " : "",
				    p->index, !strcmp(fs, "lvm") ?
				    "an LVM physical volume" :
				    !strcmp(fs, "luks") ? "LUKS-encrypted" : fs);
			continue;
		}
		if (strcmp(fs, "ext") != 0 || found)
			continue;
		error_try(&e);
		vol = gp_volume_open(img, p->start, p->size, false);
		if (!vol) {
			error_end(&e);
			/* Reported when no other root is found. */
			if (!bad) {
				bad = xstrdup(e.msg);
				bad_code = e.code;
			}
			continue;
		}
		if (is_os_root(vol) || partition >= 0) {
			found = true;
			l->partition = p->index;
			l->slot = i;
			l->state = gp_volume_state(vol);
			l->fs = gp_volume_fs_name(vol);
			read_linux(vol, l);
		}
		gp_volume_close(vol);
		error_end(&e);
	}
	if (found) {
		if (bad)		/* another ext partition, unreadable */
			warn_add("%s", bad);
		free(bad);
		return 0;
	}
	if (partition >= 0 && !forced_found) {
		free(bad);
		error_setc(GP_EXIT_USAGE, ENOENT, "%s: no partition %d "
		    "(the table has %u)", info.path, partition, pt->count);
		return -1;
	}
	if (bad && !*other) {
		/* An ext file system that could not be opened. */
		error_setc(bad_code, EINVAL, "%s", bad);
		free(bad);
		return -1;
	}
	free(bad);
	if (*other) {
		error_setc(GP_EXIT_CORRUPT, ENOTSUP, "%s: %s; gpupv-prep "
		    "writes NTFS and ext2/3/4 only (libguestfs can write "
		    "btrfs, xfs and LVM: guestfish, virt-copy-in); nothing was "
		    "written", info.path, other);
		return -1;
	}
	error_setc(GP_EXIT_NO_WINDOWS, ENOENT, "%s: no Linux root found (no "
	    "ext2/3/4 file system holds etc/os-release)", info.path);
	return -1;
}

void
gp_linux_free(struct gp_linux *l)
{
	size_t i;

	free(l->name);
	free(l->version_id);
	free(l->pretty_name);
	free(l->id);
	for (i = 0; i < l->nkernels; i++)
		free(l->kernels[i]);
	free(l->kernels);
	free(l->firstboot);
	memset(l, 0, sizeof(*l));
}

int
gp_guest_find(gp_image *img, struct gp_partition_table *pt, int partition,
    struct gp_windows *w, struct gp_linux *l)
{
	struct gp_error win, lx;
	const char *colon;
	int r;

	memset(l, 0, sizeof(*l));
	error_try(&win);
	r = gp_windows_find(img, pt, partition, w);
	if (!error_end(&win) && r == 0)
		return 0;
	if (win.code != GP_EXIT_NO_WINDOWS)
		return error_pass(&win);
	error_try(&lx);
	r = gp_linux_find(img, pt, partition, l);
	if (!error_end(&lx) && r == 0)
		return 1;
	if (lx.code != GP_EXIT_NO_WINDOWS)
		return error_pass(&lx);
	/* Neither: say what was looked for, both ways. */
	colon = strstr(lx.msg, ": ");
	error_setc(GP_EXIT_NO_WINDOWS, ENOENT, "%s; %s", win.msg,
	    colon ? colon + 2 : lx.msg);
	return -1;
}
