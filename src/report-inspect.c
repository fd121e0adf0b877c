/*
 * report-inspect.c - inspect's report: the image (format, sizes, chain),
 * its partitions, the Windows or Linux found and the packages staged in
 * it, for a person or as JSON (--json).
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>

#include "inspect.h"
#include "json.h"

static const char *
scheme_name(enum gp_part_scheme s)
{
	return s == GP_SCHEME_GPT ? "gpt" : s == GP_SCHEME_MBR ? "mbr" : "none";
}

/* The "image" member: the file's own facts and its chain. */
void
inspect_json_image(struct json *j, const struct gp_image_info *info,
    const gp_image *img)
{
	const gp_image *par;

	json_key(j, "image");
	json_obj_begin(j);
	json_key(j, "path");
	json_str(j, info->path);
	json_key(j, "format");
	json_str(j, info->format);
	json_key(j, "subformat");
	json_str(j, info->subformat);
	json_key(j, "virtual_size");
	json_u64(j, info->virtual_size);
	json_key(j, "file_size");
	json_u64(j, info->file_size);
	json_key(j, "logical_sector_size");
	json_u64(j, info->logical_sector_size);
	json_key(j, "physical_sector_size");
	json_u64(j, info->physical_sector_size);
	json_key(j, "block_size");
	if (info->block_size)
		json_u64(j, info->block_size);
	else
		json_null(j);
	json_key(j, "parent");
	json_str(j, info->parent);
	json_key(j, "disk_id");
	json_str(j, info->disk_id[0] ? info->disk_id : NULL);
	json_key(j, "creator");
	json_str(j, info->creator[0] ? info->creator : NULL);
	json_key(j, "log_replayed");
	json_bool(j, info->log_replayed);
	json_key(j, "journal_replayed");
	json_bool(j, info->journal_replayed);
	json_key(j, "chain");
	json_arr_begin(j);
	for (par = gp_image_parent(img); par; par = gp_image_parent(par)) {
		struct gp_image_info pi;

		gp_image_get_info(par, &pi);
		json_obj_begin(j);
		json_key(j, "path");
		json_str(j, pi.path);
		json_key(j, "format");
		json_str(j, pi.format);
		json_key(j, "subformat");
		json_str(j, pi.subformat);
		json_obj_end(j);
	}
	json_arr_end(j);
	json_obj_end(j);
}

static void
json_linux(struct json *j, const struct gp_linux *l)
{
	size_t i;

	json_obj_begin(j);
	json_key(j, "partition");
	json_u64(j, l->partition);
	json_key(j, "filesystem");
	json_str(j, l->fs);
	json_key(j, "volume_state");
	json_str(j, gp_volume_state_name(l->state));
	json_key(j, "name");
	json_str(j, l->name);
	json_key(j, "version_id");
	json_str(j, l->version_id);
	json_key(j, "pretty_name");
	json_str(j, l->pretty_name);
	json_key(j, "id");
	json_str(j, l->id);
	json_key(j, "kernels");
	json_arr_begin(j);
	for (i = 0; i < l->nkernels; i++)
		json_str(j, l->kernels[i]);
	json_arr_end(j);
	json_key(j, "first_boot");
	json_str(j, l->firstboot);
	json_obj_end(j);
}

void
inspect_print_json(const struct gp_image_info *info, const gp_image *img,
    const struct gp_partition_table *pt, const struct gp_windows *w,
    bool have_windows, const struct gp_linux *lx, const struct pkgs *pk)
{
	struct json j;
	size_t i;

	cli_json_begin(&j, &cmd_inspect);
	inspect_json_image(&j, info, img);

	json_key(&j, "partition_table");
	json_str(&j, scheme_name(pt->scheme));
	json_key(&j, "partitions");
	json_arr_begin(&j);
	for (i = 0; i < pt->count; i++) {
		const struct gp_partition *p = &pt->parts[i];

		json_obj_begin(&j);
		json_key(&j, "index");
		json_u64(&j, p->index);
		json_key(&j, "start");
		json_u64(&j, p->start);
		json_key(&j, "size");
		json_u64(&j, p->size);
		json_key(&j, "type");
		json_str(&j, p->type);
		json_key(&j, "type_name");
		json_str(&j, p->type_name);
		json_key(&j, "name");
		json_str(&j, p->name[0] ? p->name : NULL);
		json_key(&j, "filesystem");
		json_str(&j, p->filesystem);
		json_key(&j, "label");
		json_str(&j, p->label[0] ? p->label : NULL);
		json_obj_end(&j);
	}
	json_arr_end(&j);

	json_key(&j, "windows");
	if (have_windows) {
		json_obj_begin(&j);
		json_key(&j, "partition");
		json_u64(&j, w->partition);
		json_key(&j, "system_root");
		json_str(&j, w->system_root);
		json_key(&j, "build");
		json_str(&j, w->build);
		json_key(&j, "product");
		json_str(&j, w->product);
		json_key(&j, "volume_state");
		json_str(&j, gp_volume_state_name(w->state));
		json_key(&j, "hives");
		json_obj_begin(&j);
		json_key(&j, "SYSTEM");
		json_str(&j, w->hive_state[0]);
		json_key(&j, "SOFTWARE");
		json_str(&j, w->hive_state[1]);
		json_obj_end(&j);
		json_obj_end(&j);
	} else {
		json_null(&j);
	}
	json_key(&j, "linux");
	if (lx)
		json_linux(&j, lx);
	else
		json_null(&j);
	json_key(&j, "host_driver_store");
	json_arr_begin(&j);
	for (i = 0; i < pk->n; i++) {
		json_obj_begin(&j);
		json_key(&j, "package");
		json_str(&j, pk->v[i].name);
		json_key(&j, "files");
		json_u64(&j, pk->v[i].files);
		json_key(&j, "bytes");
		json_u64(&j, pk->v[i].bytes);
		json_key(&j, "driver_ver");
		json_str(&j, pk->v[i].driver_ver);
		json_key(&j, "wddm");
		json_str(&j, pk->v[i].wddm);
		json_key(&j, "role");
		json_str(&j, pk->v[i].role);
		json_key(&j, "gpu");
		json_str(&j, pk->v[i].gpu);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	cli_json_finish(&j);
}

/* The file's own facts and its chain, for a person. */
void
inspect_human_image(const struct gp_image_info *info, const gp_image *img)
{
	const gp_image *par;
	char b1[32], b2[32];

	cli_printf("image:       %s\n", info->path);
	cli_printf("format:      %s%s%s, %s virtual (%llu bytes), %u-byte "
	    "sectors", info->format, info->subformat ? " " : "",
	    info->subformat ? info->subformat : "",
	    cli_size(info->virtual_size, b1),
	    (unsigned long long)info->virtual_size, info->logical_sector_size);
	if (info->block_size)
		cli_printf(", %s blocks", cli_size(info->block_size, b2));
	cli_printf("\n");
	if (info->log_replayed)
		cli_printf("log:         replayed in memory (the file was not "
		    "changed)\n");
	if (info->journal_replayed)
		cli_printf("journal:     an interrupted commit, completed in memory; "
		    "the next writable run completes it in the file\n");
	for (par = gp_image_parent(img); par; par = gp_image_parent(par)) {
		struct gp_image_info pi;

		gp_image_get_info(par, &pi);
		cli_printf("parent:      %s (%s%s%s)\n", pi.path, pi.format,
		    pi.subformat ? " " : "", pi.subformat ? pi.subformat : "");
	}
	if (!gp_image_parent(img) && info->parent_hint)
		cli_printf("parent:      missing (the file names %s)\n",
		    info->parent_hint);
}

void
inspect_print_human(const struct gp_image_info *info, const gp_image *img,
    const struct gp_partition_table *pt, const struct gp_windows *w,
    bool have_windows, const struct gp_linux *lx, const struct pkgs *pk)
{
	char b1[32], b2[32];
	size_t i;

	inspect_human_image(info, img);
	cli_printf("partitions:  %s, %u\n", scheme_name(pt->scheme), pt->count);
	for (i = 0; i < pt->count; i++) {
		const struct gp_partition *p = &pt->parts[i];

		cli_printf("  %2u  at %-10s %-10s  %-22s %-9s %s\n", p->index,
		    cli_size(p->start, b1), cli_size(p->size, b2),
		    p->type_name ? p->type_name : p->type, p->filesystem,
		    p->label[0] ? p->label : p->name);
	}
	if (have_windows) {
		cli_printf("windows:     partition %u, %s, build %s, volume %s\n",
		    w->partition, w->system_root ? w->system_root : "?",
		    w->build ? w->build : "unknown",
		    gp_volume_state_name(w->state));
		if (w->product)
			cli_printf("             %s\n", w->product);
		cli_printf("hives:       SYSTEM %s, SOFTWARE %s\n",
		    w->hive_state[0] ? w->hive_state[0] : "absent",
		    w->hive_state[1] ? w->hive_state[1] : "absent");
	} else if (lx) {
		cli_printf("linux:       partition %u, %s, %s %s, volume %s\n",
		    lx->partition, lx->fs, lx->name ? lx->name : lx->id ?
		    lx->id : "unknown", lx->version_id ? lx->version_id : "",
		    gp_volume_state_name(lx->state));
		for (i = 0; i < lx->nkernels; i++)
			cli_printf("%s%s\n", i ? "             " :
			    "kernels:     ", lx->kernels[i]);
		if (lx->firstboot)
			cli_printf("first boot:  %s\n", lx->firstboot);
	} else {
		cli_printf("windows:     none found\n");
	}
	if (!pk->n) {
		cli_printf("host driver store: empty\n");
		return;
	}
	cli_printf("host driver store: %zu package%s\n", pk->n,
	    pk->n == 1 ? "" : "s");
	for (i = 0; i < pk->n; i++) {
		const struct hds_pkg *p = &pk->v[i];

		/* A heading for each GPU a bundle named. */
		if (p->gpu && (i == 0 || !pk->v[i - 1].gpu ||
		    strcmp(pk->v[i - 1].gpu, p->gpu)))
			cli_printf(" GPU %s\n", p->gpu);
		else if (!p->gpu && i > 0 && pk->v[i - 1].gpu)
			cli_printf(" no GPU recorded\n");
		cli_printf("  %-56s %6llu files  %s%s%s%s%s%s%s%s\n", p->name,
		    (unsigned long long)p->files, cli_size(p->bytes, b1),
		    p->role ? "  " : "", p->role ? p->role : "",
		    p->driver_ver ? "  DriverVer " : "",
		    p->driver_ver ? p->driver_ver : "",
		    p->wddm ? " (" : "", p->wddm ? p->wddm : "",
		    p->wddm ? ")" : "");
	}
}
