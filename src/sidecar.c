/*
 * sidecar.c - the files gpupv-prep writes beside the image for the host:
 * the Hyper-V script (GPU-PV or DDA), a NanaBox configuration, and the
 * collector that bundles a host GPU's driver package.
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

static const char ps_driver_check[] =
    "# The driver package a PnP device uses on this host: its INF in the\n"
    "# DriverStore (oemNN.inf), the FileRepository folder that INF came from,\n"
    "# and the driver version.\n"
    "function Get-DevicePackage([string]$InstanceId) {\n"
    "    $inf = (Get-PnpDeviceProperty -InstanceId $InstanceId -KeyName 'DEVPKEY_"
    "Device_DriverInfPath' -ErrorAction SilentlyContinue).Data\n"
    "    $version = (Get-PnpDeviceProperty -InstanceId $InstanceId -KeyName "
    "'DEVPKEY_Device_DriverVersion' -ErrorAction SilentlyContinue).Data\n"
    "    $folder = $null\n"
    "    if ($inf) {\n"
    "        $driver = Get-WindowsDriver -Online -Driver $inf -ErrorAction "
    "SilentlyContinue | Select-Object -First 1\n"
    "        if ($driver) {\n"
    "            $folder = Split-Path -Leaf (Split-Path -Parent $driver.OriginalF"
    "ileName)\n"
    "        }\n"
    "    }\n"
    "    [pscustomobject]@{ Inf = $inf; Folder = $folder; Version = $version "
    "}\n"
    "}\n"
    "\n"
    "# A host driver update leaves the guest's copy in HostDriverStore stale:\n"
    "# the most common reason GPU-PV stops working.  Compare before changing.\n"
    "function Test-StagedDriver([string]$InstanceId) {\n"
    "    if ($SkipDriverCheck -or $StagedPackages.Count -eq 0) {\n"
    "        return\n"
    "    }\n"
    "    $pkg = Get-DevicePackage $InstanceId\n"
    "    $staged = ($StagedPackages | ForEach-Object { $_.Folder }) -join "
    "', '\n"
    "    if (-not $pkg.Folder) {\n"
    "        Stop-WithError \"cannot tell which driver package device $InstanceId "
    "uses on this host (Get-WindowsDriver found none); the guest holds $staged. "
    "Run with -SkipDriverCheck to go on without the check.\"\n"
    "    }\n"
    "    $match = @($StagedPackages | Where-Object { $_.Folder -eq $pkg.Folder "
    "})\n"
    "    if ($match.Count -eq 0) {\n"
    "        Stop-WithError \"the host's driver for this GPU is now $($pkg.Folder"
    ") (version $($pkg.Version)), but the guest holds $staged. The host driver "
    "changed after the image was staged, so the guest's copy is stale and "
    "the GPU will not start in the VM. Stage the current package again (gpupv-pre"
    "p stage IMAGE <the folder from C:\\Windows\\System32\\DriverStore\\FileRepos"
    "itory>), or run with -SkipDriverCheck.\"\n"
    "    }\n"
    "    if ($match[0].DriverVer -and $pkg.Version -and -not $match[0].DriverVer."
    "EndsWith(',' + $pkg.Version)) {\n"
    "        Stop-WithError \"the host's driver for this GPU is version $($pkg.Ve"
    "rsion), but the guest's copy of $($pkg.Folder) is DriverVer $($match[0].Driv"
    "erVer): stage the current package again, or run with -SkipDriverCheck.\"\n"
    "    }\n"
    "    # Every other package of the set (CopyINF companions, extensions,\n"
    "    # components) must still be the host's too: a driver update replaces\n"
    "    # them together, under new folder names.\n"
    "    $store = Join-Path $env:SystemRoot 'System32\\DriverStore\\FileRepositor"
    "y'\n"
    "    $gone = @($StagedPackages | Where-Object { -not (Test-Path -LiteralPath "
    "(Join-Path $store $_.Folder)) } | ForEach-Object { $_.Folder })\n"
    "    if ($gone.Count -gt 0) {\n"
    "        Stop-WithError \"the guest holds $($gone -join ', '), which this "
    "host's DriverStore no longer has: the host driver changed after the image "
    "was staged. Stage the current packages again, or run with -SkipDriverChec"
    "k.\"\n"
    "    }\n"
    "    Write-Verbose \"host driver $($pkg.Folder) $($pkg.Version) matches "
    "what was staged, and so do the other $($StagedPackages.Count - 1) "
    "package(s)\"\n"
    "}\n"
    "\n";

static const char ps_prologue[] =
    "Set-StrictMode -Version 3.0\n"
    "$ErrorActionPreference = 'Stop'\n"
    "\n"
    "function Stop-WithError([string]$Message) {\n"
    "    $Host.UI.WriteErrorLine(\"gpupv-prep script: $Message\")\n"
    "    exit 1\n"
    "}\n"
    "\n";

static const char ps_checks[] =
    "$principal = New-Object Security.Principal.WindowsPrincipal([Security.Princi"
    "pal.WindowsIdentity]::GetCurrent())\n"
    "if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Admini"
    "strator)) {\n"
    "    Stop-WithError 'run this script from an elevated PowerShell (Run "
    "as administrator): changing a VM needs it.'\n"
    "}\n"
    "if (-not (Get-Module -ListAvailable -Name Hyper-V)) {\n"
    "    Stop-WithError 'the Hyper-V PowerShell module is not installed; enable "
    "Hyper-V with its management tools and run again.'\n"
    "}\n"
    "Import-Module Hyper-V\n"
    "$HostBuild = [Environment]::OSVersion.Version.Build\n"
    "$vm = Get-VM -Name $VMName -ErrorAction SilentlyContinue\n"
    "if (-not $vm) {\n"
    "    Stop-WithError \"there is no VM named '$VMName' on this host (Get-VM); "
    "pass -VMName.\"\n"
    "}\n"
    "if ($vm.State -ne 'Off') {\n"
    "    Stop-WithError \"VM '$VMName' is $($vm.State); turn it off (Stop-VM) "
    "and run again.\"\n"
    "}\n"
    "# The VM should run from the disk that was staged: a warning otherwise\n"
    "# (a copy of the file keeps its identifier; another disk does not).\n"
    "if ($StagedDiskIdentifier) {\n"
    "    $found = $false\n"
    "    foreach ($drive in @(Get-VMHardDiskDrive -VM $vm)) {\n"
    "        if (-not $drive.Path) {\n"
    "            continue\n"
    "        }\n"
    "        $vhd = Get-VHD -Path $drive.Path -ErrorAction SilentlyContinue\n"
    "        if ($vhd -and $vhd.DiskIdentifier -and ([guid]$vhd.DiskIdentifier) "
    "-eq ([guid]$StagedDiskIdentifier)) {\n"
    "            $found = $true\n"
    "        }\n"
    "    }\n"
    "    if (-not $found) {\n"
    "        Write-Warning \"none of the disks of VM '$VMName' is the image "
    "gpupv-prep staged (DiskIdentifier $StagedDiskIdentifier); attach it, or "
    "stage the disk the VM uses.\"\n"
    "    }\n"
    "}\n"
    "if (@(Get-VMSnapshot -VM $vm -ErrorAction SilentlyContinue).Count -gt 0) {\n"
    "    Stop-WithError \"VM '$VMName' has checkpoints: it runs from their .avhdx, "
    "not from the disk gpupv-prep staged. Remove them (Get-VMSnapshot -VMName "
    "'$VMName' | Remove-VMSnapshot) and run again.\"\n"
    "}\n"
    "if (($LowMemoryMappedIoSpace + $HighMemoryMappedIoSpace) -lt 8589934592) "
    "{\n"
    "    Stop-WithError 'the GPU needs at least 8 GB of memory-mapped IO space "
    "in all; raise -HighMemoryMappedIoSpace.'\n"
    "}\n"
    "\n";

static const char ps_gpupv_gpu[] =
    "if (Get-Command Get-VMHostPartitionableGpu -ErrorAction SilentlyContinue) "
    "{\n"
    "    $gpus = @(Get-VMHostPartitionableGpu)\n"
    "} else {\n"
    "    $gpus = @(Get-VMPartitionableGpu)\n"
    "}\n"
    "if ($gpus.Count -eq 0) {\n"
    "    Stop-WithError 'this host has no GPU that Hyper-V can partition (Get-VMH"
    "ostPartitionableGpu lists none).'\n"
    "}\n"
    "# Whether this host's Add-VMGpuPartitionAdapter can choose the GPU: asked\n"
    "# of the cmdlet itself, not guessed from the build (Server 2022 is build\n"
    "# 20348 and has it).\n"
    "$canChoose = (Get-Command Add-VMGpuPartitionAdapter).Parameters.ContainsKey("
    "'InstancePath')\n"
    "if ($InstancePath) {\n"
    "    if (-not $canChoose) {\n"
    "        Stop-WithError \"this host's Add-VMGpuPartitionAdapter has no "
    "-InstancePath (host build $HostBuild), so the GPU cannot be chosen. Run with "
    "-InstancePath '' for the default GPU.\"\n"
    "    }\n"
    "    $gpu = @($gpus | Where-Object { $_.Name -eq $InstancePath })\n"
    "    if ($gpu.Count -eq 0) {\n"
    "        $listed = ($gpus | ForEach-Object { $_.Name }) -join ', '\n"
    "        Stop-WithError \"GPU $InstancePath is not listed by Get-VMHostPartit"
    "ionableGpu; listed: $listed\"\n"
    "    }\n"
    "    $gpuPath = $gpu[0].Name\n"
    "} else {\n"
    "    $gpuPath = $gpus[0].Name\n"
    "}\n"
    "# \\\\?\\PCI#VEN_...#...#{064092b3-...}\\GPUPARAV names PnP device PCI\\VEN_"
    "...\\...\n"
    "$deviceId = $gpuPath\n"
    "if ($deviceId.StartsWith('\\\\?\\')) {\n"
    "    $deviceId = $deviceId.Substring(4)\n"
    "}\n"
    "$cut = $deviceId.IndexOf('#{')\n"
    "if ($cut -ge 0) {\n"
    "    $deviceId = $deviceId.Substring(0, $cut)\n"
    "}\n"
    "$deviceId = $deviceId.Replace('#', '\\')\n"
    "Test-StagedDriver $deviceId\n"
    "\n";

static const char ps_vm_settings[] =
    "# VM settings, only those that differ.\n"
    "$settings = @{}\n"
    "if (-not $vm.GuestControlledCacheTypes) {\n"
    "    $settings['GuestControlledCacheTypes'] = $true\n"
    "}\n"
    "if ($vm.LowMemoryMappedIoSpace -ne $LowMemoryMappedIoSpace) {\n"
    "    $settings['LowMemoryMappedIoSpace'] = $LowMemoryMappedIoSpace\n"
    "}\n"
    "if ($vm.HighMemoryMappedIoSpace -ne $HighMemoryMappedIoSpace) {\n"
    "    $settings['HighMemoryMappedIoSpace'] = $HighMemoryMappedIoSpace\n"
    "}\n"
    "if ($vm.AutomaticStopAction -ne $StopAction) {\n"
    "    $settings['AutomaticStopAction'] = $StopAction\n"
    "}\n"
    "# A checkpoint makes the VM run from an .avhdx child, not from the staged\n"
    "# disk (and a GPU-PV VM with checkpoints may not start).\n"
    "if ($vm.CheckpointType -ne 'Disabled') {\n"
    "    $settings['CheckpointType'] = 'Disabled'\n"
    "}\n"
    "if ($vm.PSObject.Properties['AutomaticCheckpointsEnabled'] -and "
    "$vm.AutomaticCheckpointsEnabled) {\n"
    "    $settings['AutomaticCheckpointsEnabled'] = $false\n"
    "}\n"
    "if ($vm.DynamicMemoryEnabled) {\n"
    "    $settings['StaticMemory'] = $true\n"
    "}\n"
    "if ($settings.Count -gt 0) {\n"
    "    $names = ($settings.Keys | Sort-Object) -join ', '\n"
    "    if ($PSCmdlet.ShouldProcess($VMName, \"Set-VM $names\")) {\n"
    "        Set-VM -VM $vm @settings\n"
    "    }\n"
    "} else {\n"
    "    Write-Host \"VM '$VMName': cache types, memory-mapped IO, stop action, "
    "checkpoints and static memory already set\"\n"
    "}\n"
    "\n";

/* A Linux guest that builds the dxgkrnl module at its first boot: the
 * module is not signed for Secure Boot. */
static const char ps_linux_secure_boot[] =
    "# The guest is Linux and builds the dxgkrnl module (DKMS) at its first\n"
    "# boot.  The module is not signed, and Secure Boot refuses to load it:\n"
    "# Secure Boot is turned off for this VM.  To keep it on, run with\n"
    "# -KeepSecureBoot and enrol a Machine Owner Key in the guest (mokutil\n"
    "# --import with the key DKMS signs with) before the module is built.\n"
    "if ($vm.Generation -ge 2 -and -not $KeepSecureBoot) {\n"
    "    if ((Get-VMFirmware -VM $vm).SecureBoot -ne 'Off') {\n"
    "        if ($PSCmdlet.ShouldProcess($VMName, 'Set-VMFirmware "
    "-EnableSecureBoot Off')) {\n"
    "            Set-VMFirmware -VM $vm -EnableSecureBoot Off\n"
    "        }\n"
    "    } else {\n"
    "        Write-Host \"VM '$VMName': Secure Boot already off\"\n"
    "    }\n"
    "}\n"
    "\n";

static const char ps_gpupv_adapter[] =
    "# One adapter for this GPU; partition sizes are left alone (GPU-PV\n"
    "# ignores them).\n"
    "# An adapter added without an instance path is Hyper-V's default GPU,\n"
    "# the first one listed.\n"
    "$adapters = @(Get-VMGpuPartitionAdapter -VM $vm)\n"
    "if ($InstancePath) {\n"
    "    $adapters = @($adapters | Where-Object { $_.InstancePath -eq $InstancePa"
    "th -or (-not $_.InstancePath -and $gpus[0].Name -eq $InstancePath) })\n"
    "}\n"
    "if ($adapters.Count -eq 0) {\n"
    "    if ($PSCmdlet.ShouldProcess($VMName, 'Add-VMGpuPartitionAdapter')) "
    "{\n"
    "        if ($InstancePath -and $canChoose) {\n"
    "            Add-VMGpuPartitionAdapter -VM $vm -InstancePath $InstancePath\n"
    "        } else {\n"
    "            Add-VMGpuPartitionAdapter -VM $vm\n"
    "        }\n"
    "    }\n"
    "} else {\n"
    "    Write-Host \"VM '$VMName' already has a GPU partition adapter for "
    "this GPU\"\n"
    "}\n"
    "if (-not $WhatIfPreference) {\n"
    "    Write-Host \"VM '$VMName' is set up for GPU-PV; start it with Start-VM "
    "-Name '$VMName'\"\n"
    "}\n";

static const char ps_dda_device[] =
    "# DDA is a Windows Server feature: client Windows has the cmdlets, but\n"
    "# Add-VMAssignableDevice fails there.\n"
    "if ((Get-CimInstance -ClassName Win32_OperatingSystem).ProductType -eq 1) "
    "{\n"
    "    Stop-WithError 'Discrete Device Assignment needs Windows Server; on "
    "this host use GPU-PV (gpupv-prep script without --dda).'\n"
    "}\n"
    "$inVm = @(Get-VMAssignableDevice -VM $vm | Where-Object { $_.LocationPath "
    "-eq $LocationPath })\n"
    "$dismounted = @(Get-VMHostAssignableDevice | Where-Object { $_.LocationPath "
    "-eq $LocationPath })\n"
    "$device = $null\n"
    "if ($inVm.Count -eq 0 -and $dismounted.Count -eq 0) {\n"
    "    # One property query for all display devices, then (for another\n"
    "    # class of device) one for every present device: never one per device.\n"
    "    foreach ($class in @('Display', $null)) {\n"
    "        if ($class) {\n"
    "            $ids = @(Get-PnpDevice -PresentOnly -Class $class -ErrorAction "
    "SilentlyContinue | ForEach-Object { $_.InstanceId })\n"
    "        } else {\n"
    "            $ids = @(Get-PnpDevice -PresentOnly | ForEach-Object { "
    "$_.InstanceId })\n"
    "        }\n"
    "        if ($ids.Count -eq 0) {\n"
    "            continue\n"
    "        }\n"
    "        $hit = @(Get-PnpDeviceProperty -InstanceId $ids -KeyName "
    "'DEVPKEY_Device_LocationPaths' -ErrorAction SilentlyContinue | "
    "Where-Object { $_.Data -contains $LocationPath })\n"
    "        if ($hit.Count -gt 0) {\n"
    "            $device = Get-PnpDevice -InstanceId $hit[0].InstanceId\n"
    "            break\n"
    "        }\n"
    "    }\n"
    "    if (-not $device) {\n"
    "        Stop-WithError \"no device at location path $LocationPath on "
    "this host (DEVPKEY_Device_LocationPaths).\"\n"
    "    }\n"
    "}\n"
    "\n";

static const char ps_dda_assign[] =
    "# Disabled, dismounted, assigned: when a step fails, the steps done are\n"
    "# undone (mounted back and enabled on the host), so a failure never\n"
    "# leaves the GPU with neither the host nor the VM.\n"
    "if ($inVm.Count -eq 0) {\n"
    "    $disabledHere = $false\n"
    "    $dismountedHere = $false\n"
    "    try {\n"
    "        if ($dismounted.Count -eq 0 -and $PSCmdlet.ShouldProcess($LocationPath"
    ", 'Disable-PnpDevice, Dismount-VMHostAssignableDevice')) {\n"
    "            Disable-PnpDevice -InstanceId $device.InstanceId -Confirm:$false\n"
    "            $disabledHere = $true\n"
    "            Dismount-VMHostAssignableDevice -Force -LocationPath "
    "$LocationPath\n"
    "            $dismountedHere = $true\n"
    "        }\n"
    "        if ($PSCmdlet.ShouldProcess($VMName, \"Add-VMAssignableDevice "
    "$LocationPath\")) {\n"
    "            Add-VMAssignableDevice -LocationPath $LocationPath -VM $vm\n"
    "        }\n"
    "    } catch {\n"
    "        $failure = $_.Exception.Message\n"
    "        $undo = @()\n"
    "        if ($dismountedHere) {\n"
    "            try {\n"
    "                Mount-VMHostAssignableDevice -LocationPath $LocationPath\n"
    "                $undo += 'mounted back on the host'\n"
    "            } catch {\n"
    "                $undo += \"NOT mounted back ($($_.Exception.Message)): run "
    "Mount-VMHostAssignableDevice -LocationPath '$LocationPath'\"\n"
    "            }\n"
    "        }\n"
    "        if ($disabledHere) {\n"
    "            try {\n"
    "                Enable-PnpDevice -InstanceId $device.InstanceId "
    "-Confirm:$false\n"
    "                $undo += 'enabled again'\n"
    "            } catch {\n"
    "                $undo += \"NOT enabled again ($($_.Exception.Message))\"\n"
    "            }\n"
    "        }\n"
    "        if ($undo.Count -eq 0) {\n"
    "            $undo += 'nothing had changed on the host'\n"
    "        }\n"
    "        Stop-WithError \"assigning $LocationPath to VM '$VMName' failed: "
    "$failure; the device was $($undo -join ', ').\"\n"
    "    }\n"
    "} else {\n"
    "    Write-Host \"VM '$VMName' already has the device at $LocationPath\"\n"
    "}\n"
    "if (-not $WhatIfPreference) {\n"
    "    Write-Host \"VM '$VMName' is set up for DDA; start it with Start-VM "
    "-Name '$VMName'\"\n"
    "}\n";

static const char ps_collect[] =
    "#Requires -Version 5.1\n"
    "<#\n"
    ".SYNOPSIS\n"
    "    Bundles the driver packages of this host's partitionable GPUs for\n"
    "    gpupv-prep.\n"
    ".DESCRIPTION\n"
    "    Written by gpupv-prep host-script.  Run it on the Windows host that\n"
    "    will run the VM, from an elevated PowerShell.  For every GPU Hyper-V\n"
    "    can partition (or the one named by -InstancePath) it finds every\n"
    "    driver package the GPU uses, and nothing else: the device's, the\n"
    "    companions its INF names under CopyINF (the installed package of that\n"
    "    INF with the device's driver version), extension INFs applied to the\n"
    "    device and the packages of its software components; and the files\n"
    "    of the driver that live in System32 and SysWOW64 rather than in the\n"
    "    store.  It writes a zip: the package folders, those files,\n"
    "    gpupv-bundle.json giving each package's role and version and each\n"
    "    file's Windows path, and with -ExportServiceKey a reg export of the\n"
    "    driver's service key.\n"
    "    -IncludeWslLibs adds Microsoft's Direct3D libraries for Linux guests\n"
    "    (libdxcore.so, libd3d12.so, libd3d12core.so), which come only with\n"
    "    WSL: from C:\\Program Files\\WSL\\lib, then System32\\lxss\\lib.\n"
    "    Then, on the Linux machine: gpupv-prep stage IMAGE gpupv-bundle.zip\n"
    "#>\n"
    "[CmdletBinding()]\n"
    "param(\n"
    "    # default: gpupv-bundle.zip beside this script\n"
    "    [string]$OutFile = '',\n"
    "    [string]$InstancePath = '',\n"
    "    [switch]$ExportServiceKey,\n"
    "    [switch]$IncludeWslLibs\n"
    ")\n"
    "\n"
    "Set-StrictMode -Version 3.0\n"
    "$ErrorActionPreference = 'Stop'\n"
    "\n"
    "function Stop-WithError([string]$Message) {\n"
    "    $Host.UI.WriteErrorLine(\"gpupv-prep host-script: $Message\")\n"
    "    exit 1\n"
    "}\n"
    "\n"
    "function Get-DeviceValue([string]$InstanceId, [string]$Key) {\n"
    "    (Get-PnpDeviceProperty -InstanceId $InstanceId -KeyName $Key -ErrorActio"
    "n SilentlyContinue).Data\n"
    "}\n"
    "\n"
    "# The third-party driver packages of this host (oemNN.inf, the folder in"
    "\n"
    "# FileRepository each came from, its version), asked once.\n"
    "$script:storeDrivers = $null\n"
    "function Get-StoreDrivers {\n"
    "    if ($null -eq $script:storeDrivers) {\n"
    "        $script:storeDrivers = @(Get-WindowsDriver -Online)\n"
    "    }\n"
    "    $script:storeDrivers\n"
    "}\n"
    "\n"
    "# The FileRepository folder of an installed INF (oemNN.inf).\n"
    "function Get-PackageOf([string]$Inf) {\n"
    "    $d = @(Get-StoreDrivers | Where-Object { $_.Driver -eq $Inf }) | Sel"
    "ect-Object -First 1\n"
    "    if (-not $d) {\n"
    "        return $null\n"
    "    }\n"
    "    [pscustomobject]@{ Source = (Split-Path -Parent $d.OriginalFileName)"
    "; Version = [string]$d.Version }\n"
    "}\n"
    "\n"
    "# The INF names a device INF lists under CopyINF (AMD's OpenGL, Vulkan a"
    "nd\n"
    "# OpenCL companions), in the order they appear.\n"
    "function Get-CopyInfNames([string]$InfFile) {\n"
    "    $names = @()\n"
    "    foreach ($line in [IO.File]::ReadAllLines($InfFile)) {\n"
    "        $t = ($line -split ';')[0].Trim()\n"
    "        if ($t -match '^CopyINF\\s*=\\s*(.+)$') {\n"
    "            foreach ($n in $Matches[1].Split(',')) {\n"
    "                $n = $n.Trim().Trim('\"')\n"
    "                if ($n -and $names -notcontains $n) {\n"
    "                    $names += $n\n"
    "                }\n"
    "            }\n"
    "        }\n"
    "    }\n"
    "    $names\n"
    "}\n"
    "\n"
    "# An installed companion: the package whose INF had the name CopyINF\n"
    "# gives; of several, the one with the device's driver version, else the"
    "\n"
    "# newest.\n"
    "function Find-Companion([string]$Name, [string]$Version) {\n"
    "    $all = @(Get-StoreDrivers | Where-Object { (Split-Path -Leaf $_.Orig"
    "inalFileName) -eq $Name })\n"
    "    $same = @($all | Where-Object { [string]$_.Version -eq $Version })\n"
    "    if ($same.Count -gt 0) {\n"
    "        $pick = $same[0]\n"
    "    } else {\n"
    "        $pick = $all | Sort-Object -Property @('Version', 'Date') -Descending |"
    " Select-Object -First 1\n"
    "    }\n"
    "    if (-not $pick) {\n"
    "        return $null\n"
    "    }\n"
    "    [pscustomobject]@{ Source = (Split-Path -Parent $pick.OriginalFileNa"
    "me); Version = [string]$pick.Version }\n"
    "}\n"
    "\n"
    "$principal = New-Object Security.Principal.WindowsPrincipal([Security.Princi"
    "pal.WindowsIdentity]::GetCurrent())\n"
    "if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Admini"
    "strator)) {\n"
    "    Stop-WithError 'run this script from an elevated PowerShell (Run "
    "as administrator): reading the driver store needs it.'\n"
    "}\n"
    "if (Get-Command Get-VMHostPartitionableGpu -ErrorAction SilentlyContinue) "
    "{\n"
    "    $gpus = @(Get-VMHostPartitionableGpu)\n"
    "} elseif (Get-Command Get-VMPartitionableGpu -ErrorAction SilentlyContinue) "
    "{\n"
    "    $gpus = @(Get-VMPartitionableGpu)\n"
    "} else {\n"
    "    Stop-WithError 'the Hyper-V PowerShell module is not installed; enable "
    "Hyper-V with its management tools and run again.'\n"
    "}\n"
    "if ($InstancePath) {\n"
    "    $gpus = @($gpus | Where-Object { $_.Name -eq $InstancePath })\n"
    "}\n"
    "# Beside the script (or in the current folder for a pasted script), but\n"
    "# never under the Windows folder: an elevated PowerShell starts in\n"
    "# System32.\n"
    "if (-not $OutFile) {\n"
    "    $dir = $PSScriptRoot\n"
    "    if (-not $dir) {\n"
    "        $dir = (Get-Location).ProviderPath\n"
    "    }\n"
    "    $OutFile = Join-Path $dir 'gpupv-bundle.zip'\n"
    "}\n"
    "$OutFile = [IO.Path]::GetFullPath($OutFile)\n"
    "$windir = [IO.Path]::GetFullPath($env:SystemRoot).TrimEnd('\\') + '\\'\n"
    "if ($OutFile.StartsWith($windir, [StringComparison]::OrdinalIgnoreCase)) "
    "{\n"
    "    Stop-WithError \"the bundle would go to $OutFile, inside $env:SystemR"
    "oot; pass -OutFile with a folder of your own.\"\n"
    "}\n"
    "if ($gpus.Count -eq 0) {\n"
    "    Stop-WithError 'no partitionable GPU (Get-VMHostPartitionableGpu "
    "lists none, or not the one named by -InstancePath).'\n"
    "}\n"
    "\n"
    "$work = Join-Path ([IO.Path]::GetTempPath()) ('gpupv-bundle-' + [guid]::NewG"
    "uid().ToString())\n"
    "New-Item -ItemType Directory -Path $work | Out-Null\n"
    "try {\n"
    "    $entries = @()\n"
    "    $regs = @()\n"
    "    foreach ($gpu in $gpus) {\n"
    "        # \\\\?\\PCI#VEN_...#...#{064092b3-625e-43bf-9eb5-dc845897dd59}\\GPU"
    "PARAV\n"
    "        # names the PnP device PCI\\VEN_...\\...\n"
    "        $id = $gpu.Name\n"
    "        if ($id.StartsWith('\\\\?\\')) {\n"
    "            $id = $id.Substring(4)\n"
    "        }\n"
    "        $cut = $id.IndexOf('#{')\n"
    "        if ($cut -ge 0) {\n"
    "            $id = $id.Substring(0, $cut)\n"
    "        }\n"
    "        $id = $id.Replace('#', '\\')\n"
    "        $inf = Get-DeviceValue $id 'DEVPKEY_Device_DriverInfPath'\n"
    "        if (-not $inf) {\n"
    "            Stop-WithError \"GPU $($gpu.Name): no driver INF recorded fo"
    "r device $id.\"\n"
    "        }\n"
    "        $device = Get-PackageOf $inf\n"
    "        if (-not $device) {\n"
    "            Stop-WithError \"GPU $($gpu.Name): Get-WindowsDriver does no"
    "t know $inf.\"\n"
    "        }\n"
    "        $version = Get-DeviceValue $id 'DEVPKEY_Device_DriverVersion'\n"
    "        # Every package the GPU uses, with its role: the device's; the\n"
    "        # companions its INF names under CopyINF; extension INFs applied"
    " to\n"
    "        # the device; the packages of its software components.\n"
    "        $parts = @([pscustomobject]@{ Source = $device.Source; Role = 'd"
    "evice'; Version = $device.Version })\n"
    "        $deviceInf = Join-Path $device.Source (Split-Path -Leaf (@(Get-S"
    "toreDrivers | Where-Object { $_.Driver -eq $inf })[0].OriginalFileName))"
    "\n"
    "        foreach ($name in @(Get-CopyInfNames $deviceInf)) {\n"
    "            $c = Find-Companion $name $version\n"
    "            if ($c) {\n"
    "                $parts += [pscustomobject]@{ Source = $c.Source; Role = "
    "'companion'; Version = $c.Version }\n"
    "            } else {\n"
    "                Write-Warning \"GPU $($gpu.Name): CopyINF names $name, w"
    "hich is not installed on this host; not collected\"\n"
    "            }\n"
    "        }\n"
    "        foreach ($cfg in @(Get-DeviceValue $id 'DEVPKEY_Device_ExtendedC"
    "onfigurationIds')) {\n"
    "            $e = $null\n"
    "            if ($cfg) {\n"
    "                $e = Get-PackageOf ($cfg -split ':')[0]\n"
    "            }\n"
    "            if ($e) {\n"
    "                $parts += [pscustomobject]@{ Source = $e.Source; Role = "
    "'extension'; Version = $e.Version }\n"
    "            }\n"
    "        }\n"
    "        foreach ($child in @(Get-DeviceValue $id 'DEVPKEY_Device_Childre"
    "n')) {\n"
    "            if (-not $child -or -not $child.StartsWith('SWD\\')) {\n"
    "                continue\n"
    "            }\n"
    "            $childInf = Get-DeviceValue $child 'DEVPKEY_Device_DriverInf"
    "Path'\n"
    "            $sw = $null\n"
    "            if ($childInf) {\n"
    "                $sw = Get-PackageOf $childInf\n"
    "            }\n"
    "            if ($sw) {\n"
    "                $parts += [pscustomobject]@{ Source = $sw.Source; Role ="
    " 'component'; Version = $sw.Version }\n"
    "            }\n"
    "        }\n"
    "        $packages = @()\n"
    "        foreach ($p in $parts) {\n"
    "            $folder = Split-Path -Leaf $p.Source\n"
    "            if (@($packages | Where-Object { $_.folder -eq $folder }).Co"
    "unt -gt 0) {\n"
    "                continue\n"
    "            }\n"
    "            $target = Join-Path $work $folder\n"
    "            if (-not (Test-Path -LiteralPath $target)) {\n"
    "                Write-Host \"copying $($p.Role) package $($p.Source)\"\n"
    "                Copy-Item -LiteralPath $p.Source -Destination $target -R"
    "ecurse\n"
    "            }\n"
    "            $packages += [ordered]@{ folder = $folder; role = $p.Role; d"
    "river_ver = $p.Version }\n"
    "        }\n"
    "        # Files of the driver outside the store (Win32_PnPSignedDriver's"
    "\n"
    "        # data files): those in System32 and SysWOW64 go into the bundle"
    ",\n"
    "        # to be put back where they came from; others are only named.\n"
    "        $extras = @()\n"
    "        $wql = $id.Replace('\\', '\\\\').Replace(\"'\", \"\\'\")\n"
    "        foreach ($signed in @(Get-CimInstance -ClassName Win32_PnPSigned"
    "Driver -Filter \"DeviceID='$wql'\" -ErrorAction SilentlyContinue)) {\n"
    "            foreach ($file in @(Get-CimAssociatedInstance -InputObject $"
    "signed -ResultClassName CIM_DataFile -ErrorAction SilentlyContinue)) {\n"
    "                $path = [string]$file.Name\n"
    "                if (-not (Test-Path -LiteralPath $path -PathType Leaf)) "
    "{\n"
    "                    continue\n"
    "                }\n"
    "                $item = Get-Item -LiteralPath $path\n"
    "                $sub = $null\n"
    "                foreach ($d in @('System32', 'SysWOW64')) {\n"
    "                    if ($item.DirectoryName -ieq (Join-Path $env:SystemR"
    "oot $d)) {\n"
    "                        $sub = $d\n"
    "                    }\n"
    "                }\n"
    "                if (-not $sub) {\n"
    "                    if ($path -notlike '*\\DriverStore\\*') {\n"
    "                        Write-Host \"not collected (outside System32 and"
    " SysWOW64): $path\"\n"
    "                    }\n"
    "                    continue\n"
    "                }\n"
    "                $rel = \"extras/$sub/$($item.Name)\"\n"
    "                if (@($extras | Where-Object { $_.file -eq $rel }).Count"
    " -gt 0) {\n"
    "                    continue\n"
    "                }\n"
    "                $target = Join-Path $work \"extras\\$sub\"\n"
    "                New-Item -ItemType Directory -Force -Path $target | Out-"
    "Null\n"
    "                Copy-Item -LiteralPath $item.FullName -Destination (Join"
    "-Path $target $item.Name)\n"
    "                $extras += [ordered]@{ file = $rel; path = $item.FullNam"
    "e }\n"
    "            }\n"
    "        }\n"
    "        $service = Get-DeviceValue $id 'DEVPKEY_Device_Service'\n"
    "        $entries += [ordered]@{\n"
    "            name = (Get-PnpDevice -InstanceId $id).FriendlyName\n"
    "            instance_path = $gpu.Name\n"
    "            hardware_id = @(Get-DeviceValue $id 'DEVPKEY_Device_Hardware"
    "Ids')[0]\n"
    "            inf_path = $inf\n"
    "            install_section = Get-DeviceValue $id 'DEVPKEY_Device_Driver"
    "InfSection'\n"
    "            driver_version = $version\n"
    "            package = Split-Path -Leaf $device.Source\n"
    "            packages = $packages\n"
    "            extras = $extras\n"
    "            service = $service\n"
    "        }\n"
    "        if ($ExportServiceKey -and $service -and ($regs -notcontains "
    "\"$service.reg\")) {\n"
    "            & reg.exe export \"HKLM\\SYSTEM\\CurrentControlSet\\Services\\$s"
    "ervice\" (Join-Path $work \"$service.reg\") /y | Out-Null\n"
    "            if ($LASTEXITCODE -ne 0) {\n"
    "                Stop-WithError \"reg export of the $service service key "
    "failed.\"\n"
    "            }\n"
    "            $regs += \"$service.reg\"\n"
    "        }\n"
    "    }\n"
    "    $wslLib = $null\n"
    "    if ($IncludeWslLibs) {\n"
    "        $target = Join-Path $work 'wsl-lib'\n"
    "        New-Item -ItemType Directory -Path $target | Out-Null\n"
    "        $sources = @(\n"
    "            @{ Dir = (Join-Path $env:ProgramFiles 'WSL\\lib'); Only = '' },\n"
    "            # beside the vendors' libraries: only Microsoft's\n"
    "            @{ Dir = (Join-Path $env:SystemRoot 'System32\\lxss\\lib'); "
    "Only = '^lib(d3d12|d3d12core|dxcore)\\.so$' }\n"
    "        )\n"
    "        foreach ($s in $sources) {\n"
    "            if (-not (Test-Path -LiteralPath $s.Dir)) {\n"
    "                continue\n"
    "            }\n"
    "            foreach ($f in Get-ChildItem -LiteralPath $s.Dir -File) {\n"
    "                if ($s.Only -and $f.Name -notmatch $s.Only) {\n"
    "                    continue\n"
    "                }\n"
    "                $dest = Join-Path $target $f.Name\n"
    "                if (-not (Test-Path -LiteralPath $dest)) {\n"
    "                    Copy-Item -LiteralPath $f.FullName -Destination $dest\n"
    "                }\n"
    "            }\n"
    "        }\n"
    "        if (-not (Test-Path -LiteralPath (Join-Path $target "
    "'libdxcore.so'))) {\n"
    "            Stop-WithError 'no libdxcore.so in C:\\Program Files\\WSL\\lib "
    "or System32\\lxss\\lib: install WSL on this host (wsl --install), or run "
    "without -IncludeWslLibs.'\n"
    "        }\n"
    "        $wslLib = 'wsl-lib'\n"
    "        Write-Host \"added the WSL libraries ($((Get-ChildItem "
    "-LiteralPath $target -File).Count) files)\"\n"
    "    }\n"
    "    $bundle = [ordered]@{\n"
    "        format = 1\n"
    "        tool = 'gpupv-prep host-script'\n"
    "        host_build = [Environment]::OSVersion.Version.Build\n"
    "        gpus = $entries\n"
    "        reg = $regs\n"
    "        wsl_lib = $wslLib\n"
    "    }\n"
    "    $json = ConvertTo-Json -InputObject $bundle -Depth 8\n"
    "    [IO.File]::WriteAllText((Join-Path $work 'gpupv-bundle.json'), $json, "
    "(New-Object Text.UTF8Encoding($false)))\n"
    "    if (Test-Path -LiteralPath $OutFile) {\n"
    "        Remove-Item -LiteralPath $OutFile\n"
    "    }\n"
    "    Add-Type -AssemblyName System.IO.Compression.FileSystem\n"
    "    [IO.Compression.ZipFile]::CreateFromDirectory($work, $OutFile)\n"
    "    $files = @(Get-ChildItem -LiteralPath $work -Recurse -File)\n"
    "    $bytes = ($files | Measure-Object -Property Length -Sum).Sum\n"
    "    foreach ($e in $entries) {\n"
    "        Write-Host \"collected $($e.package) for $($e.name)\"\n"
    "    }\n"
    "    Write-Host (\"wrote {0}: {1} GPU(s), {2} files, {3:N1} MB ({4:N1} MB "
    "packed); on the Linux side: gpupv-prep stage IMAGE {5}\" -f $OutFile, "
    "$entries.Count, $files.Count, ($bytes / 1048576), ((Get-Item -LiteralPath "
    "$OutFile).Length / 1048576), (Split-Path -Leaf $OutFile))\n"
    "} finally {\n"
    "    Remove-Item -LiteralPath $work -Recurse -Force -ErrorAction SilentlyCont"
    "inue\n"
    "}\n";
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

const char *
sidecar_host_script(void)
{
	return ps_collect;
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
