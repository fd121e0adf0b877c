/*
 * sidecar.c - the files gpupv-prep writes beside the image for the host:
 * the Hyper-V script (GPU-PV or DDA; its fixed PowerShell is in
 * sidecar-ps.c) and a NanaBox configuration.  The collector that bundles
 * a host GPU's driver package is collector.c.
 *
 * The scripts target Windows PowerShell 5.1 and PowerShell 7: they check
 * everything before changing anything, change only what differs (a second
 * run changes nothing), and honour -WhatIf.  Facts they rest on (the
 * GPU-PV seeds, DESIGN.md section 7, what Easy-GPU-PV's users learned):
 * -InstancePath where Add-VMGpuPartitionAdapter has it; GPU-PV wants
 * guest-controlled cache types, 1 GB low and 64 GB high MMIO space
 * (Easy-GPU-PV #444: 32 GB failed on 25H2 / Server 2025 hosts), ShutDown
 * as the stop action (TurnOff leaves the guest dirty for the next offline
 * run), no checkpoints (the VM would run from an .avhdx) and static
 * memory; DDA TurnOff, 3 GB and 33280 MB; partition sizes are ignored by
 * GPU-PV and never set.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>

#include "json.h"
#include "sidecar.h"
#include "sidecar-int.h"

/*
 * Text from a package, a bundle, the guest's manifest or the command line
 * as a PowerShell single-quoted literal.  PowerShell ends such a string on
 * ' and also on U+2018-U+201B (its tokenizer's IsSingleQuote), so every
 * one of them is doubled; control characters (which an editor or a
 * terminal would show as something else) go outside the quotes as
 * [char] values, the literal becoming a parenthesised concatenation; bytes
 * that are not UTF-8 become U+FFFD.  Lengths are capped by
 * sidecar_check() before anything is written.
 */
static void
ps_str(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	bool ctl = false, open = true;
	int len;

	for (; *p; p += len)
		if (utf8_decode(p, &len) < 0x20 || *p == 0x7f)
			ctl = true;
	p = (const unsigned char *)(s ? s : "");
	fputs(ctl ? "('" : "'", f);
	for (; *p; p += len) {
		uint32_t c = utf8_decode(p, &len);

		if (c < 0x20 || c == 0x7f) {
			fprintf(f, "%s[char]0x%02x", open ? "' + " : " + ", c);
			open = false;
			continue;
		}
		if (!open) {
			fputs(" + '", f);
			open = true;
		}
		if (c == 0xfffd && len == 1) {
			fputs("\xef\xbf\xbd", f);
			continue;
		}
		if (c == '\'' || (c >= 0x2018 && c <= 0x201b))
			fwrite(p, 1, (size_t)len, f);
		fwrite(p, 1, (size_t)len, f);
	}
	fputs(open ? "'" : "", f);
	fputs(ctl ? ")" : "", f);
}

/* Comment text from data: no line breaks or other control characters,
 * no end of a block comment, valid UTF-8. */
static void
ps_comment(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	int len;

	for (; *p; p += len) {
		uint32_t c = utf8_decode(p, &len);

		if (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0))
			fputc(' ', f);
		else if (c == '#' && p[1] == '>')
			fputs("# ", f);
		else if (c == 0xfffd && len == 1)
			fputs("\xef\xbf\xbd", f);
		else
			fwrite(p, 1, (size_t)len, f);
	}
}

/*
 * What goes into a script or a NanaBox file from outside is bounded: a
 * VM name, a GPU path or a DriverVer longer than this is refused, not cut
 * (a cut DriverVer would no longer match the host's).
 */
#define SIDECAR_MAX_FIELD	1024

static int
check_field(const char *what, const char *v)
{
	if (v && strlen(v) > SIDECAR_MAX_FIELD) {
		error_set(EINVAL, "the %s is longer than %d bytes; refusing to "
		    "write it into a script", what, SIDECAR_MAX_FIELD);
		return -1;
	}
	return 0;
}

static int
sidecar_check(const struct sidecar *s)
{
	const struct host_cfg *h = s->host;
	size_t i;

	if (check_field("VM name", h->vm_name) < 0 ||
	    check_field("GPU instance path", h->gpu) < 0 ||
	    check_field("GPU name", h->gpu_name) < 0 ||
	    check_field("hardware id", h->hardware_id) < 0 ||
	    check_field("DDA location path", h->dda) < 0)
		return -1;
	for (i = 0; s->man && i < s->man->n; i++)
		if (check_field("package name", s->man->v[i].name) < 0 ||
		    check_field("DriverVer", s->man->v[i].driver_ver) < 0)
			return -1;
	return 0;
}

/* Whether the manifest is a Linux guest's that places a DKMS tree. */
static bool
linux_module(const struct manifest *m)
{
	size_t i;

	for (i = 0; m && i < m->ncopies; i++)
		if (!strncmp(m->copies[i].dest, "/usr/src/", 9))
			return true;
	return false;
}

static void
ps_header(FILE *f, const struct sidecar *s, bool dda)
{
	const struct host_cfg *h = s->host;
	size_t i;

	fputs("#Requires -Version 5.1\n<#\n.SYNOPSIS\n", f);
	if (dda)
		fputs("    Assigns a GPU to the Hyper-V VM with Discrete Device "
		    "Assignment (DDA).\n", f);
	else
		fputs("    Sets up the Hyper-V VM for GPU paravirtualization "
		    "(GPU-PV).\n", f);
	fputs(".DESCRIPTION\n    Written by gpupv-prep ", f);
	fputs(gp_version(), f);
	fputs(" for the disk image ", f);
	ps_comment(f, s->image);
	if (dda)
		fputs(".\n    It checks the host first (elevation, the Hyper-V "
		    "module, Windows Server,\n    the VM, the device), then "
		    "changes only what differs: a second run\n    changes nothing."
		    "  A failed assignment gives the device back to the host.\n"
		    "    -WhatIf shows the changes without making them.  The guest "
		    "uses its own\n    driver, so the host's is not compared with "
		    "the image.\n", f);
	else
		fputs(".\n    It checks the host first (elevation, the Hyper-V "
		    "module, the VM, the GPU and\n    that the host's driver "
		    "packages are the ones staged into the image), then\n    "
		    "changes only what differs: a second run changes nothing.  "
		    "-WhatIf shows\n    the changes without making them.\n", f);
	for (i = 0; s->man && i < s->man->n; i++) {
		fputs("    Staged: ", f);
		ps_comment(f, s->man->v[i].name);
		if (s->man->v[i].driver_ver) {
			fputs(", DriverVer ", f);
			ps_comment(f, s->man->v[i].driver_ver);
		}
		fputs("\n", f);
	}
	if (h->gpu_name) {
		fputs("    GPU: ", f);
		ps_comment(f, h->gpu_name);
		fputs("\n", f);
	}
	fputs("#>\n[CmdletBinding(SupportsShouldProcess = $true)]\nparam(\n"
	    "    [string]$VMName = ", f);
	ps_str(f, h->vm_name);
	fputs(",\n", f);
	if (dda) {
		fputs("    [string]$LocationPath = ", f);
		ps_str(f, h->dda);
	} else {
		fputs("    # '' lets Hyper-V pick the GPU\n"
		    "    [string]$InstancePath = ", f);
		ps_str(f, h->gpu);
	}
	fprintf(f, ",\n%s    [UInt64]$LowMemoryMappedIoSpace = %llu,\n"
	    "    [UInt64]$HighMemoryMappedIoSpace = %llu%s%s\n)\n\n", dda ?
	    "    # MMIO space for the device's BARs (Microsoft's DDA guide)\n" :
	    "    # MMIO space: 1 GB low, 64 GB high (32 GB was too little for\n"
	    "    # GPU-PV on 25H2 and Server 2025 hosts: Easy-GPU-PV #444)\n",
	    (unsigned long long)(h->low_mmio_mb ? h->low_mmio_mb :
	    dda ? SIDECAR_DDA_LOW_MMIO_MB : SIDECAR_LOW_MMIO_MB) << 20,
	    (unsigned long long)(h->high_mmio_mb ? h->high_mmio_mb :
	    dda ? SIDECAR_DDA_HIGH_MMIO_MB : SIDECAR_HIGH_MMIO_MB) << 20,
	    !dda && linux_module(s->man) ? ",\n    [switch]$KeepSecureBoot" :
	    "", dda ? "" : ",\n    [switch]$SkipDriverCheck");
	fputs("# The disk gpupv-prep staged (Get-VHD's DiskIdentifier), or '' when "
	    "it has\n# none (raw).\n$StagedDiskIdentifier = ", f);
	ps_str(f, s->disk_id ? s->disk_id : "");
	fputs("\n", f);
	if (dda) {
		fputs("\n", f);
		return;
	}
	fputs("# What gpupv-prep staged into the guest's HostDriverStore.\n"
	    "$StagedPackages = @(\n", f);
	for (i = 0; s->man && i < s->man->n; i++) {
		fputs("    [pscustomobject]@{ Folder = ", f);
		ps_str(f, s->man->v[i].name);
		fputs("; DriverVer = ", f);
		ps_str(f, s->man->v[i].driver_ver);
		fputs(" }\n", f);
	}
	fputs(")\n\n", f);
}

/* Close a memory stream; its buffer is final only then. */
static char *
finish(FILE *f, char **buf)
{
	if (fclose(f) != 0)
		abort();
	return *buf;
}

char *
sidecar_vm_script(const struct sidecar *s)
{
	bool dda = s->host->dda != NULL;
	char *buf = NULL;
	size_t len;
	FILE *f;

	if (sidecar_check(s) < 0)
		return NULL;
	f = open_memstream(&buf, &len);
	if (!f)
		abort();
	ps_header(f, s, dda);
	fputs(ps_prologue, f);
	if (!dda)
		fputs(ps_driver_check, f);
	fputs(ps_checks, f);
	fputs(dda ? ps_dda_device : ps_gpupv_gpu, f);
	fputs(dda ? "# DDA: TurnOff when the host shuts down, as Microsoft's DDA "
	    "guide says.\n$StopAction = 'TurnOff'\n\n" :
	    "# GPU-PV: the guest is shut down with the host.  TurnOff would leave "
	    "its\n# volume and registry dirty, and gpupv-prep refuses to edit "
	    "those offline.\n$StopAction = 'ShutDown'\n\n", f);
	fputs(ps_vm_settings, f);
	if (!dda && linux_module(s->man))
		fputs(ps_linux_secure_boot, f);
	fputs(dda ? ps_dda_assign : ps_gpupv_adapter, f);
	return finish(f, &buf);
}

char *
sidecar_nanabox(const struct sidecar *s, size_t *len)
{
	const struct host_cfg *h = s->host;
	char *buf = NULL;
	struct json j;
	FILE *f;

	if (sidecar_check(s) < 0)
		return NULL;
	f = open_memstream(&buf, len);
	if (!f)
		abort();
	fputs("\xef\xbb\xbf", f);		/* NanaBox reads UTF-8 with a BOM */
	json_init(&j, f);
	json_obj_begin(&j);
	json_key(&j, "NanaBox");
	json_obj_begin(&j);
	json_key(&j, "Type");
	json_str(&j, "VirtualMachine");
	json_key(&j, "Version");
	json_u64(&j, 1);
	json_key(&j, "GuestType");
	json_str(&j, "Windows");
	json_key(&j, "Name");
	json_str(&j, h->vm_name);
	json_key(&j, "ProcessorCount");
	json_u64(&j, s->cpus ? s->cpus : 4);
	json_key(&j, "MemorySize");
	json_u64(&j, s->memory_mb ? s->memory_mb : 8192);
	json_key(&j, "Gpu");
	json_obj_begin(&j);
	json_key(&j, "AssignmentMode");
	json_str(&j, h->gpu && *h->gpu ? "List" : "Default");
	if (h->gpu && *h->gpu) {
		json_key(&j, "SelectedDevices");
		json_arr_begin(&j);
		json_str(&j, h->gpu);
		json_arr_end(&j);
	}
	json_obj_end(&j);
	json_key(&j, "NetworkAdapters");
	json_arr_begin(&j);
	json_obj_begin(&j);
	json_key(&j, "Connected");
	json_bool(&j, true);
	json_key(&j, "Enabled");
	json_bool(&j, true);
	json_obj_end(&j);
	json_arr_end(&j);
	json_key(&j, "ScsiDevices");
	json_arr_begin(&j);
	json_obj_begin(&j);
	json_key(&j, "Enabled");
	json_bool(&j, true);
	json_key(&j, "Type");
	json_str(&j, "VirtualDisk");
	/* The file name alone: the .7b sits beside the image on the host,
	 * and NanaBox resolves a relative path from the .7b's folder. */
	json_key(&j, "Path");
	json_str(&j, strrchr(s->image, '/') ? strrchr(s->image, '/') + 1 :
	    s->image);
	json_obj_end(&j);
	json_arr_end(&j);
	json_obj_end(&j);
	json_obj_end(&j);
	json_end(&j);
	return finish(f, &buf);
}

char *
sidecar_default_vm_name(const char *image)
{
	const char *b = strrchr(image, '/');
	char *n = xstrdup(b ? b + 1 : image), *dot = strrchr(n, '.');

	if (dot && dot != n)
		*dot = '\0';
	return n;
}

int
sidecar_write(const char *path, const char *text, size_t len)
{
	char *tmp;
	int fd, e;

	if (strcmp(path, "-") == 0) {
		if (fwrite(text, 1, len, stdout) != len || fflush(stdout)) {
			error_set(EIO, "write error on standard output");
			return -1;
		}
		return 0;
	}
	tmp = xasprintf("%s.tmp.XXXXXX", path);
	fd = mkstemp(tmp);

	if (fd < 0)
		goto fail;
	if (file_pwrite(fd, text, len, 0) < 0 || fchmod(fd, 0644) < 0 ||
	    fsync(fd) < 0 || close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0)
		goto fail;
	free(tmp);
	return 0;
fail:
	e = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	free(tmp);
	error_set(e, "%s: %s", path, strerror(e));
	return -1;
}
