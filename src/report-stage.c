/*
 * report-stage.c - the report of stage, remove and verify, for a person
 * (a line per package and per file placed outside the store, then the
 * totals) or as JSON (--json), and the exit status it ends with.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "json.h"
#include "stage.h"

static void
print_json(const struct cmd *cmd, const struct stage_report *r,
    int err_code, const char *err)
{
	bool verify = strcmp(cmd->name, "verify") == 0;
	bool stage = strcmp(cmd->name, "stage") == 0;
	struct json j;
	size_t i;

	cli_json_begin(&j, cmd);
	json_key(&j, "image");
	json_str(&j, r->image);
	json_key(&j, "partition");
	json_u64(&j, r->partition);
	json_key(&j, "guest");
	json_str(&j, r->repo ? (r->linux_guest ? "linux" : "windows") : NULL);
	json_key(&j, "repository");
	json_str(&j, r->repo);
	if (!verify) {
		json_key(&j, "dry_run");
		json_bool(&j, r->dry_run);
		json_key(&j, "changed");
		json_bool(&j, r->changed);
		json_key(&j, "files_written");
		json_u64(&j, r->files_written);
		json_key(&j, "bytes_written");
		json_u64(&j, r->bytes_written);
	}
	json_key(&j, "verified");
	json_bool(&j, r->verified);
	if (stage) {
		json_key(&j, "space");
		json_obj_begin(&j);
		json_key(&j, "free");
		json_u64(&j, r->free_before);
		json_key(&j, "needed");
		json_u64(&j, r->space_needed);
		json_obj_end(&j);
	}
	if (verify) {
		json_key(&j, "files_checked");
		json_u64(&j, r->files_checked);
		json_key(&j, "reader");
		json_str(&j, r->reader);
		json_key(&j, "problems");
		json_arr_begin(&j);
		for (i = 0; i < r->nproblems; i++)
			json_str(&j, r->problems[i]);
		json_arr_end(&j);
	} else {
		json_key(&j, "registry");
		json_obj_begin(&j);
		json_key(&j, "values_set");
		json_u64(&j, r->reg_values_set);
		json_key(&j, "values_deleted");
		json_u64(&j, r->reg_values_deleted);
		json_key(&j, "keys_created");
		json_u64(&j, r->reg_keys_created);
		json_key(&j, "keys_deleted");
		json_u64(&j, r->reg_keys_deleted);
		json_key(&j, "hives_written");
		json_arr_begin(&j);
		for (i = 0; i < r->nhives_written; i++)
			json_str(&j, r->hives_written[i]);
		json_arr_end(&j);
		json_obj_end(&j);
		json_key(&j, "system_files");
		json_arr_begin(&j);
		for (i = 0; i < r->nsysfiles; i++) {
			const struct stage_sysfile *f = &r->sysfiles[i];

			json_obj_begin(&j);
			json_key(&j, "path");
			json_str(&j, f->dest);
			json_key(&j, "action");
			json_str(&j, f->link ? "linked" : f->source ? "copied" :
			    f->restored ? "restored" : "removed");
			json_key(&j, "source");
			json_str(&j, f->source);
			if (f->link) {
				json_key(&j, "target");
				json_str(&j, f->link);
			}
			json_obj_end(&j);
		}
		json_arr_end(&j);
		json_key(&j, "system_files_kept");
		json_u64(&j, r->sysfiles_kept);
	}
	json_key(&j, "packages");
	json_arr_begin(&j);
	for (i = 0; i < r->n; i++) {
		const struct stage_item *it = &r->v[i];

		json_obj_begin(&j);
		json_key(&j, "name");
		json_str(&j, it->name);
		json_key(&j, "inf");
		json_str(&j, it->inf);
		json_key(&j, "driver_ver");
		json_str(&j, it->driver_ver);
		json_key(&j, "action");
		json_str(&j, verify ? "check" : stage_action_name(it->action));
		json_key(&j, "replaces");
		json_str(&j, it->replaces);
		json_key(&j, "role");
		json_str(&j, it->role);
		json_key(&j, "gpu");
		json_str(&j, it->gpu);
		json_key(&j, "files");
		json_u64(&j, it->files);
		json_key(&j, "bytes");
		json_u64(&j, it->bytes);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	if (err)
		cli_json_error(&j, err_code, err);
	cli_json_finish(&j);
}

static const char *
plural(uint64_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

static void
print_human(const struct cmd *cmd, const struct stage_report *r)
{
	static const char *const verb[] = { "staged", "replaced", "unchanged",
	    "removed", "repaired" };
	static const char *const would[] = { "would stage", "would replace",
	    "unchanged", "would remove", "would repair" };
	bool remove = strcmp(cmd->name, "remove") == 0;
	uint64_t restored = 0, regs = r->reg_values_set +
	    r->reg_values_deleted + r->reg_keys_created + r->reg_keys_deleted;
	char b1[32];
	size_t i;

	cli_print_warnings(cmd);
	for (i = 0; i < r->n; i++) {
		const struct stage_item *it = &r->v[i];

		cli_printf("%-13s %s (%s%s%llu files, %s%s%s)\n",
		    strcmp(cmd->name, "verify") == 0 ? "checked" :
		    (r->dry_run ? would : verb)[it->action], it->name,
		    it->role ? it->role : "", it->role ? ", " : "",
		    (unsigned long long)it->files, cli_size(it->bytes, b1),
		    it->driver_ver ? ", DriverVer " : "",
		    it->driver_ver ? it->driver_ver : "");
	}
	for (i = 0; i < r->nsysfiles; i++) {
		const struct stage_sysfile *f = &r->sysfiles[i];

		restored += f->restored;
		if (f->link)
			cli_printf("%-13s %s -> %s\n", r->dry_run ?
			    "would link" : "linked", f->dest, f->link);
		else if (f->source && !strcmp(f->source, "gpupv-prep"))
			cli_printf("%-13s %s\n", r->dry_run ? "would write" :
			    "wrote", f->dest);
		else if (f->source)
			cli_printf("%-13s %s <- %s\n", r->dry_run ?
			    "would copy" : "copied", f->dest, f->source);
		else
			cli_printf("%-13s %s%s\n", r->dry_run ? "would delete" :
			    "deleted", f->dest, f->restored ?
			    " (the guest's original put back)" : "");
	}
	if (r->sysfiles_kept)
		cli_printf("kept          %llu newer file%s the guest already had "
		    "(CopyToVmWhenNewer)\n", (unsigned long long)r->sysfiles_kept,
		    r->sysfiles_kept == 1 ? "" : "s");
	for (i = 0; i < r->nhives_written; i++)
		cli_printf("%-13s %s\n", r->dry_run ? "would edit" : "edited",
		    r->hives_written[i]);
	if (strcmp(cmd->name, "verify") == 0) {
		for (i = 0; i < r->nproblems; i++)
			cli_printf("BAD           %s\n", r->problems[i]);
		cli_printf("%llu files checked through %s's reader: %s\n",
		    (unsigned long long)r->files_checked, r->reader,
		    r->bad ? "MISMATCH" : "all match the manifest");
		return;
	}
	if (!r->changed) {
		cli_printf("nothing to do: %s already holds what was asked\n",
		    r->image);
		return;
	}
	/* One line of totals, each kind counted apart. */
	cli_printf("%s: %s", r->image, r->dry_run ? "dry run, would have " :
	    "");
	if (remove)
		cli_printf("removed %zu package%s from %s", r->n,
		    plural(r->n, "", "s"), r->repo);
	else
		cli_printf("%s %llu file%s (%s) into %s",
		    r->dry_run ? "written" : "wrote",
		    (unsigned long long)r->files_written,
		    plural(r->files_written, "", "s"),
		    cli_size(r->bytes_written, b1), r->repo);
	if (r->nsysfiles && r->linux_guest)
		cli_printf(", %s %zu file%s and link%s in /usr/lib/wsl/lib and "
		    "/etc%s%s%s", remove ? "deleted" : r->dry_run ? "placed" :
		    "placed", r->nsysfiles, plural(r->nsysfiles, "", "s"),
		    plural(r->nsysfiles, "", "s"), remove ? "" : " (",
		    remove ? "" : cli_size(r->sysfile_bytes, b1),
		    remove ? "" : ")");
	else if (r->nsysfiles && remove)
		cli_printf(", deleted %zu System32/SysWOW64 file%s (%llu "
		    "original%s put back)", r->nsysfiles,
		    plural(r->nsysfiles, "", "s"), (unsigned long long)restored,
		    plural(restored, "", "s"));
	else if (r->nsysfiles)
		cli_printf(", copied %zu System32/SysWOW64 file%s (%s)",
		    r->nsysfiles, plural(r->nsysfiles, "", "s"),
		    cli_size(r->sysfile_bytes, b1));
	if (regs)
		cli_printf(", edited the registry (%llu value%s set, %llu "
		    "deleted, %llu key%s created, %llu deleted)",
		    (unsigned long long)r->reg_values_set,
		    plural(r->reg_values_set, "", "s"),
		    (unsigned long long)r->reg_values_deleted,
		    (unsigned long long)r->reg_keys_created,
		    plural(r->reg_keys_created, "", "s"),
		    (unsigned long long)r->reg_keys_deleted);
	cli_printf("%s\n", r->dry_run ? "; nothing was written" : "");
}

/*
 * The report of a run.  A failure after the commit (side_fail: a sidecar
 * file that could not be written) still reports what the run did, with
 * the error in it.
 */
int
stage_report_finish(const struct cmd *cmd, bool json, struct stage_report *r,
    int rc, bool side_fail)
{
	int ret = 0, code = gp_error_code() ? gp_error_code() :
	    GP_EXIT_FAILURE;
	char *err = side_fail ? xstrdup(gp_error_message()) : NULL;

	if (rc < 0) {
		ret = cli_fail(cmd);
	} else {
		if (json)
			print_json(cmd, r, code, err);
		else if (cli_quiet)
			cli_print_warnings(cmd);
		else
			print_human(cmd, r);
		if (err) {
			cli_msg(cmd, "%s", err);
			ret = code;
		}
		if (r->bad)
			ret = GP_EXIT_FAILURE;
		if (fflush(stdout) != 0 || ferror(stdout)) {
			cli_msg(cmd, "write error on standard output");
			ret = GP_EXIT_FAILURE;
		}
	}
	stage_report_free(r);
	free(err);
	return ret;
}
