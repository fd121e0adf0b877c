/*
 * fs.h - the guest file system behind a gp_volume handle.  A volume is
 * NTFS (ntfs.c, the only libntfs-3g user) or ext2/3/4 (ext4.c, the only
 * libext2fs user); fs.c probes the partition and forwards each
 * gp_volume_* call to the driver's operation.  Drivers embed struct
 * gp_volume as the first member of their own handle.
 */
#ifndef GPUPV_FS_H
#define GPUPV_FS_H

#include "util.h"

struct fs_ops {
	const char *name;		/* "ntfs", "ext4" */
	enum gp_fs_kind kind;
	gp_volume *(*open)(gp_image *img, uint64_t start, uint64_t size,
	    bool writable);
	int (*close)(gp_volume *v);
	const char *(*fs_name)(gp_volume *v);
	enum gp_volume_state (*state)(gp_volume *v);
	const char *(*label)(gp_volume *v);
	int (*stat)(gp_volume *v, const char *path, struct gp_stat *st);
	int (*list)(gp_volume *v, const char *path,
	    int (*fn)(void *ctx, const char *name, const struct gp_stat *st),
	    void *ctx);
	int (*extract)(gp_volume *v, const char *path, const char *host_path);
	char *(*realpath)(gp_volume *v, const char *path);
	int (*mkdir_p)(gp_volume *v, const char *path);
	int (*overwrite)(gp_volume *v, const char *path, const void *data,
	    size_t len);
	int (*create)(gp_volume *v, const char *path, bool is_dir,
	    uint64_t size, const struct gp_file_meta *m,
	    int (*fill)(void *ctx, void *buf, size_t len), void *ctx);
	int (*symlink)(gp_volume *v, const char *path, const char *target,
	    const struct gp_file_meta *m);
	char *(*link_target)(gp_volume *v, const char *path);	/* NULL: none */
	int (*set_meta)(gp_volume *v, const char *path,
	    const struct gp_file_meta *m);
	int (*remove)(gp_volume *v, const char *path);
	int (*space)(gp_volume *v, uint64_t *unit, uint64_t *free_bytes);
	uint64_t (*stored_free)(gp_volume *v);
	int (*free_runs)(gp_volume *v, int (*fn)(void *ctx, uint64_t off,
	    uint64_t len), void *ctx);
	int (*read_cb)(gp_volume *v, const char *path,
	    int (*fn)(void *ctx, const void *buf, size_t len), void *ctx);
	int (*read)(gp_volume *v, const char *path, size_t max, void **data,
	    size_t *len);
	int (*short_names)(gp_volume *v, const char *dir_path, int mode);
	uint64_t (*file_cost)(gp_volume *v, uint64_t size);
};

struct gp_volume {
	const struct fs_ops *ops;
};

/* A fill function for create over bytes in memory (ctx: struct fs_mem). */
struct fs_mem {
	const uint8_t *p;
	size_t left;
};
/* Inline, so that the drivers need nothing of fs.c, which calls them. */
static inline int
fs_mem_fill(void *ctx, void *buf, size_t n)
{
	struct fs_mem *m = ctx;

	if (n > m->left)
		n = m->left;
	memcpy(buf, m->p, n);
	m->p += n;
	m->left -= n;
	return 0;
}

extern const struct fs_ops ntfs_fs_ops;
extern const struct fs_ops ext4_fs_ops;

#endif
