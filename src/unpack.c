/*
 * unpack.c - a package archive (zip, cab, tar, tar.gz, 7z) unpacked into a
 * private folder with libarchive, its only user: no entry may land
 * outside the folder, no link of any kind is made, and the size and the
 * compression ratio are capped, so a hostile archive is refused before it
 * fills the disk.  Files and folders keep the archive's times.
 */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>

#include <archive.h>
#include <archive_entry.h>

#include "package-int.h"

static int
mkdirs(char *path)
{
	char *p;

	for (p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0700) < 0 && errno != EEXIST) {
			*p = '/';
			return -1;
		}
		*p = '/';
	}
	return 0;
}

/*
 * Unpack an archive into dest, refusing entries that would land outside
 * it (absolute paths, "..") and links of any kind.
 */
/* A folder's time from its archive entry, set once its contents are in
 * (creating them changed it). */
struct dir_time {
	char *path;
	struct timespec ts;
};

int
unpack(const char *arch, const char *dest)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	struct dir_time *dirs = NULL;
	size_t ndirs = 0, count = 0, i;
	uint64_t total = 0, packed = 0;
	struct stat ast;
	int r, ret = -1;

	if (stat(arch, &ast) == 0)
		packed = (uint64_t)ast.st_size;

	archive_read_support_filter_all(a);
	archive_read_support_format_zip(a);
	archive_read_support_format_cab(a);
	archive_read_support_format_tar(a);
	archive_read_support_format_gnutar(a);
	archive_read_support_format_7zip(a);
	if (archive_read_open_filename(a, arch, 64 * 1024) != ARCHIVE_OK) {
		error_input(EINVAL, "%s: not a package folder or an archive that "
		    "can be read (zip, cab, tar, tar.gz): %s", arch,
		    archive_error_string(a));
		goto out;
	}
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(e);
		char *rel, *c, *full;
		mode_t type = archive_entry_filetype(e);
		bool bad = false;

		if (++count > PKG_MAX_ENTRIES) {
			error_input(E2BIG, "%s: more than %u entries", arch,
			    PKG_MAX_ENTRIES);
			goto out;
		}
		if (!name || !*name)
			continue;
		rel = xstrdup(name);
		for (c = rel; *c; c++)
			if (*c == '\\')
				*c = '/';
		if (rel[0] == '/' || (isalpha((unsigned char)rel[0]) &&
		    rel[1] == ':'))
			bad = true;
		for (c = rel; !bad && c; c = strchr(c, '/')) {
			if (*c == '/')
				c++;
			if (strncmp(c, "..", 2) == 0 && (c[2] == '/' || !c[2]))
				bad = true;
		}
		if (bad || archive_entry_hardlink(e) || archive_entry_symlink(e) ||
		    type == AE_IFLNK) {
			error_input(EXDEV, "%s: entry '%s' %s; refused", arch, name,
			    bad ? "leaves the archive's root" : "is a link");
			free(rel);
			goto out;
		}
		full = path_join(dest, rel);
		free(rel);
		if (mkdirs(full) < 0) {
			error_set(errno, "%s: %s", full, strerror(errno));
			free(full);
			goto out;
		}
		if (type == AE_IFDIR) {
			if (mkdir(full, 0700) < 0 && errno != EEXIST) {
				error_set(errno, "%s: %s", full, strerror(errno));
				free(full);
				goto out;
			}
			if (archive_entry_mtime_is_set(e)) {
				dirs = xrealloc(dirs, (ndirs + 1) * sizeof(*dirs));
				dirs[ndirs].path = xstrdup(full);
				dirs[ndirs].ts.tv_sec = archive_entry_mtime(e);
				dirs[ndirs++].ts.tv_nsec =
				    archive_entry_mtime_nsec(e);
			}
		} else if (type == AE_IFREG) {
			int fd = open(full, O_WRONLY | O_CREAT | O_TRUNC |
			    O_CLOEXEC | O_NOFOLLOW, 0600);
			const void *buf;
			size_t len;
			la_int64_t off;
			struct timespec ts[2];

			if (fd < 0) {
				error_set(errno, "%s: %s", full, strerror(errno));
				free(full);
				goto out;
			}
			while ((r = archive_read_data_block(a, &buf, &len,
			    &off)) == ARCHIVE_OK) {
				total += len;
				if (total > PKG_MAX_UNPACKED ||
				    (total > PKG_RATIO_AFTER &&
				    total / PKG_MAX_RATIO > packed)) {
					error_input(E2BIG, "%s: entry '%s': the "
					    "archive expands to more than %s; "
					    "refused as a zip bomb", arch, name,
					    total > PKG_MAX_UNPACKED ? "16 GiB" :
					    "200 times its size");
					close(fd);
					free(full);
					goto out;
				}
				if (file_pwrite(fd, buf, len, (uint64_t)off) < 0) {
					error_set(errno, "%s: %s", full,
					    strerror(errno));
					close(fd);
					free(full);
					goto out;
				}
			}
			if (r != ARCHIVE_EOF) {
				error_input(EIO, "%s: entry '%s': %s", arch, name,
				    archive_error_string(a));
				close(fd);
				free(full);
				goto out;
			}
			/* The size the header gives (holes of a sparse
			 * entry) counts against the cap too. */
			if (archive_entry_size(e) > 0) {
				uint64_t sz = (uint64_t)archive_entry_size(e);

				if (sz > PKG_MAX_UNPACKED ||
				    total + sz > 2 * PKG_MAX_UNPACKED) {
					error_input(E2BIG, "%s: entry '%s' claims "
					    "%llu bytes; refused", arch, name,
					    (unsigned long long)sz);
					close(fd);
					free(full);
					goto out;
				}
			}
			/* A size the header does not give (a zip written as a
			 * stream keeps sizes in data descriptors) leaves the
			 * file as long as the data written. */
			if (archive_entry_size_is_set(e) &&
			    ftruncate(fd, (off_t)archive_entry_size(e)) < 0)
				debug("%s: %s", full, strerror(errno));
			ts[0].tv_sec = ts[1].tv_sec = archive_entry_mtime(e);
			ts[0].tv_nsec = ts[1].tv_nsec =
			    archive_entry_mtime_nsec(e);
			if (archive_entry_mtime_is_set(e))
				futimens(fd, ts);
			close(fd);
		} else {
			error_input(EINVAL, "%s: entry '%s' is not a file or "
			    "folder; refused", arch, name);
			free(full);
			goto out;
		}
		free(full);
	}
	if (r != ARCHIVE_EOF) {
		error_input(EIO, "%s: %s", arch, archive_error_string(a));
		goto out;
	}
	/* Deepest last-listed first, though setting a folder's time does
	 * not change its parent's. */
	for (i = ndirs; i-- > 0;) {
		struct timespec ts[2] = { dirs[i].ts, dirs[i].ts };

		if (utimensat(AT_FDCWD, dirs[i].path, ts,
		    AT_SYMLINK_NOFOLLOW) < 0) {
			error_set(errno, "%s: %s", dirs[i].path,
			    strerror(errno));
			goto out;
		}
	}
	ret = 0;
out:
	for (i = 0; i < ndirs; i++)
		free(dirs[i].path);
	free(dirs);
	archive_read_free(a);
	return ret;
}
