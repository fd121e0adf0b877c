/*
 * stage-hash.c - the SHA-256 of every file a run stages, for the
 * manifest, computed by a thread of its own while the main thread copies.
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "stage-int.h"

/*
 * The files' SHA-256 for the manifest are computed by a thread of their
 * own while the main thread copies (several files at once: sha256_files),
 * so hashing costs no wall time on a machine with two cores.  The two
 * read the same source files; a file that changes in between is caught by
 * comparing what each saw (size, times, inode), as tar and rsync do.
 */

static void *
hash_main(void *arg)
{
	struct hash_run *h = arg;

	sha256_files(h->jobs, h->n, &h->stop);
	return NULL;
}

struct by_size {
	uint64_t size;
	size_t idx;
};

static int
by_size_cmp(const void *a, const void *b)
{
	const struct by_size *x = a, *y = b;

	if (x->size != y->size)
		return x->size < y->size ? 1 : -1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Start hashing the files of the packages marked in todo[], largest
 * first: that keeps the lanes busy to the end. */
int
hash_start(struct hash_run *h, const struct pkg_set *set, const bool *todo)
{
	const struct pkg_file **files;
	struct by_size *o;
	size_t i, j, n = 0;
	int err;

	memset(h, 0, sizeof(*h));
	for (i = 0; i < set->n; i++)
		for (j = 0; todo[i] && j < set->v[i].nfiles; j++)
			n += !set->v[i].files[j].is_dir;
	files = xcalloc(n + 1, sizeof(*files));
	o = xcalloc(n + 1, sizeof(*o));
	for (i = 0; i < set->n; i++)
		for (j = 0; todo[i] && j < set->v[i].nfiles; j++)
			if (!set->v[i].files[j].is_dir) {
				files[h->n] = &set->v[i].files[j];
				o[h->n].size = files[h->n]->size;
				o[h->n].idx = h->n;
				h->n++;
			}
	qsort(o, n, sizeof(*o), by_size_cmp);
	h->jobs = xcalloc(n + 1, sizeof(*h->jobs));
	h->slot = xcalloc(n + 1, sizeof(*h->slot));
	h->copied = xcalloc(n + 1, sizeof(*h->copied));
	for (i = 0; i < n; i++) {
		h->jobs[i].path = files[o[i].idx]->src;
		h->jobs[i].size = files[o[i].idx]->size;
		h->slot[o[i].idx] = i;
	}
	free(files);
	free(o);
	if ((err = pthread_create(&h->th, NULL, hash_main, h)) != 0) {
		error_set(err, "cannot start the hashing thread: %s",
		    strerror(err));
		return -1;
	}
	h->started = true;
	return 0;
}

static bool
same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
	    a->st_size == b->st_size &&
	    a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	    a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	    a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	    a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/*
 * Wait for the hashes.  With ok set, check that hasher and copier read
 * the same files and store the digests into the packages marked in
 * todo[]; otherwise just stop the thread.
 */
int
hash_finish(struct hash_run *h, struct pkg_set *set, const bool *todo,
    bool ok)
{
	size_t i, j, k = 0;
	int ret = 0;

	if (h->started) {
		if (!ok)
			h->stop = 1;
		pthread_join(h->th, NULL);
		h->started = false;
	}
	for (i = 0; ok && ret == 0 && i < set->n; i++)
		for (j = 0; todo[i] && j < set->v[i].nfiles; j++) {
			struct pkg_file *f = &set->v[i].files[j];
			const struct sha256_job *jb;
			int err;

			if (f->is_dir)
				continue;
			jb = &h->jobs[h->slot[k]];
			err = jb->err == EIO ? 0 : jb->err;
			if (jb->err || !same_file(&jb->st,
			    &h->copied[h->slot[k]])) {
				error_set(err ? err : EAGAIN, "%s: %s; nothing "
				    "was written", f->src, err ? strerror(err) :
				    "the file changed while being staged");
				ret = -1;
				break;
			}
			sha256_hex(jb->digest, f->sha256);
			k++;
		}
	free(h->jobs);
	free(h->slot);
	free(h->copied);
	memset(h, 0, sizeof(*h));
	return ret;
}
