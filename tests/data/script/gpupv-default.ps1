#Requires -Version 5.1
<#
.SYNOPSIS
    Sets up the Hyper-V VM for GPU paravirtualization (GPU-PV).
.DESCRIPTION
    Written by gpupv-prep VERSION for the disk image g.vhdx.
    It checks the host first (elevation, the Hyper-V module, the VM, the GPU and
    that the host's driver packages are the ones staged into the image), then
    changes only what differs: a second run changes nothing.  -WhatIf shows
    the changes without making them.
    Staged: nv_dispig.inf_amd64_677da8a9230cea15, DriverVer 10/23/2023,31.0.15.4601
#>
[CmdletBinding(SupportsShouldProcess = $true)]
param(
    [string]$VMName = 'guest',
    # '' lets Hyper-V pick the GPU
    [string]$InstancePath = '',
    # MMIO space: 1 GB low, 64 GB high (32 GB was too little for
    # GPU-PV on 25H2 and Server 2025 hosts: Easy-GPU-PV #444)
    [UInt64]$LowMemoryMappedIoSpace = 1073741824,
    [UInt64]$HighMemoryMappedIoSpace = 68719476736,
    [switch]$SkipDriverCheck
)

# The disk gpupv-prep staged (Get-VHD's DiskIdentifier), or '' when it has
# none (raw).
$StagedDiskIdentifier = '{ID}'
# What gpupv-prep staged into the guest's HostDriverStore.
$StagedPackages = @(
    [pscustomobject]@{ Folder = 'nv_dispig.inf_amd64_677da8a9230cea15'; DriverVer = '10/23/2023,31.0.15.4601' }
)

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'

function Stop-WithError([string]$Message) {
    $Host.UI.WriteErrorLine("gpupv-prep script: $Message")
    exit 1
}

# The driver package a PnP device uses on this host: its INF in the
# DriverStore (oemNN.inf), the FileRepository folder that INF came from,
# and the driver version.
function Get-DevicePackage([string]$InstanceId) {
    $inf = (Get-PnpDeviceProperty -InstanceId $InstanceId -KeyName 'DEVPKEY_Device_DriverInfPath' -ErrorAction SilentlyContinue).Data
    $version = (Get-PnpDeviceProperty -InstanceId $InstanceId -KeyName 'DEVPKEY_Device_DriverVersion' -ErrorAction SilentlyContinue).Data
    $folder = $null
    if ($inf) {
        $driver = Get-WindowsDriver -Online -Driver $inf -ErrorAction SilentlyContinue | Select-Object -First 1
        if ($driver) {
            $folder = Split-Path -Leaf (Split-Path -Parent $driver.OriginalFileName)
        }
    }
    [pscustomobject]@{ Inf = $inf; Folder = $folder; Version = $version }
}

# A host driver update leaves the guest's copy in HostDriverStore stale:
# the most common reason GPU-PV stops working.  Compare before changing.
function Test-StagedDriver([string]$InstanceId) {
    if ($SkipDriverCheck -or $StagedPackages.Count -eq 0) {
        return
    }
    $pkg = Get-DevicePackage $InstanceId
    $staged = ($StagedPackages | ForEach-Object { $_.Folder }) -join ', '
    if (-not $pkg.Folder) {
        Stop-WithError "cannot tell which driver package device $InstanceId uses on this host (Get-WindowsDriver found none); the guest holds $staged. Run with -SkipDriverCheck to go on without the check."
    }
    $match = @($StagedPackages | Where-Object { $_.Folder -eq $pkg.Folder })
    if ($match.Count -eq 0) {
        Stop-WithError "the host's driver for this GPU is now $($pkg.Folder) (version $($pkg.Version)), but the guest holds $staged. The host driver changed after the image was staged, so the guest's copy is stale and the GPU will not start in the VM. Stage the current package again (gpupv-prep stage IMAGE <the folder from C:\Windows\System32\DriverStore\FileRepository>), or run with -SkipDriverCheck."
    }
    if ($match[0].DriverVer -and $pkg.Version -and -not $match[0].DriverVer.EndsWith(',' + $pkg.Version)) {
        Stop-WithError "the host's driver for this GPU is version $($pkg.Version), but the guest's copy of $($pkg.Folder) is DriverVer $($match[0].DriverVer): stage the current package again, or run with -SkipDriverCheck."
    }
    # Every other package of the set (CopyINF companions, extensions,
    # components) must still be the host's too: a driver update replaces
    # them together, under new folder names.
    $store = Join-Path $env:SystemRoot 'System32\DriverStore\FileRepository'
    $gone = @($StagedPackages | Where-Object { -not (Test-Path -LiteralPath (Join-Path $store $_.Folder)) } | ForEach-Object { $_.Folder })
    if ($gone.Count -gt 0) {
        Stop-WithError "the guest holds $($gone -join ', '), which this host's DriverStore no longer has: the host driver changed after the image was staged. Stage the current packages again, or run with -SkipDriverCheck."
    }
    Write-Verbose "host driver $($pkg.Folder) $($pkg.Version) matches what was staged, and so do the other $($StagedPackages.Count - 1) package(s)"
}

$principal = New-Object Security.Principal.WindowsPrincipal([Security.Principal.WindowsIdentity]::GetCurrent())
if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
    Stop-WithError 'run this script from an elevated PowerShell (Run as administrator): changing a VM needs it.'
}
if (-not (Get-Module -ListAvailable -Name Hyper-V)) {
    Stop-WithError 'the Hyper-V PowerShell module is not installed; enable Hyper-V with its management tools and run again.'
}
Import-Module Hyper-V
$HostBuild = [Environment]::OSVersion.Version.Build
$vm = Get-VM -Name $VMName -ErrorAction SilentlyContinue
if (-not $vm) {
    Stop-WithError "there is no VM named '$VMName' on this host (Get-VM); pass -VMName."
}
if ($vm.State -ne 'Off') {
    Stop-WithError "VM '$VMName' is $($vm.State); turn it off (Stop-VM) and run again."
}
# The VM should run from the disk that was staged: a warning otherwise
# (a copy of the file keeps its identifier; another disk does not).
if ($StagedDiskIdentifier) {
    $found = $false
    foreach ($drive in @(Get-VMHardDiskDrive -VM $vm)) {
        if (-not $drive.Path) {
            continue
        }
        $vhd = Get-VHD -Path $drive.Path -ErrorAction SilentlyContinue
        if ($vhd -and $vhd.DiskIdentifier -and ([guid]$vhd.DiskIdentifier) -eq ([guid]$StagedDiskIdentifier)) {
            $found = $true
        }
    }
    if (-not $found) {
        Write-Warning "none of the disks of VM '$VMName' is the image gpupv-prep staged (DiskIdentifier $StagedDiskIdentifier); attach it, or stage the disk the VM uses."
    }
}
if (@(Get-VMSnapshot -VM $vm -ErrorAction SilentlyContinue).Count -gt 0) {
    Stop-WithError "VM '$VMName' has checkpoints: it runs from their .avhdx, not from the disk gpupv-prep staged. Remove them (Get-VMSnapshot -VMName '$VMName' | Remove-VMSnapshot) and run again."
}
if (($LowMemoryMappedIoSpace + $HighMemoryMappedIoSpace) -lt 8589934592) {
    Stop-WithError 'the GPU needs at least 8 GB of memory-mapped IO space in all; raise -HighMemoryMappedIoSpace.'
}

if (Get-Command Get-VMHostPartitionableGpu -ErrorAction SilentlyContinue) {
    $gpus = @(Get-VMHostPartitionableGpu)
} else {
    $gpus = @(Get-VMPartitionableGpu)
}
if ($gpus.Count -eq 0) {
    Stop-WithError 'this host has no GPU that Hyper-V can partition (Get-VMHostPartitionableGpu lists none).'
}
# Whether this host's Add-VMGpuPartitionAdapter can choose the GPU: asked
# of the cmdlet itself, not guessed from the build (Server 2022 is build
# 20348 and has it).
$canChoose = (Get-Command Add-VMGpuPartitionAdapter).Parameters.ContainsKey('InstancePath')
if ($InstancePath) {
    if (-not $canChoose) {
        Stop-WithError "this host's Add-VMGpuPartitionAdapter has no -InstancePath (host build $HostBuild), so the GPU cannot be chosen. Run with -InstancePath '' for the default GPU."
    }
    $gpu = @($gpus | Where-Object { $_.Name -eq $InstancePath })
    if ($gpu.Count -eq 0) {
        $listed = ($gpus | ForEach-Object { $_.Name }) -join ', '
        Stop-WithError "GPU $InstancePath is not listed by Get-VMHostPartitionableGpu; listed: $listed"
    }
    $gpuPath = $gpu[0].Name
} else {
    $gpuPath = $gpus[0].Name
}
# \\?\PCI#VEN_...#...#{064092b3-...}\GPUPARAV names PnP device PCI\VEN_...\...
$deviceId = $gpuPath
if ($deviceId.StartsWith('\\?\')) {
    $deviceId = $deviceId.Substring(4)
}
$cut = $deviceId.IndexOf('#{')
if ($cut -ge 0) {
    $deviceId = $deviceId.Substring(0, $cut)
}
$deviceId = $deviceId.Replace('#', '\')
Test-StagedDriver $deviceId

# GPU-PV: the guest is shut down with the host.  TurnOff would leave its
# volume and registry dirty, and gpupv-prep refuses to edit those offline.
$StopAction = 'ShutDown'

# VM settings, only those that differ.
$settings = @{}
if (-not $vm.GuestControlledCacheTypes) {
    $settings['GuestControlledCacheTypes'] = $true
}
if ($vm.LowMemoryMappedIoSpace -ne $LowMemoryMappedIoSpace) {
    $settings['LowMemoryMappedIoSpace'] = $LowMemoryMappedIoSpace
}
if ($vm.HighMemoryMappedIoSpace -ne $HighMemoryMappedIoSpace) {
    $settings['HighMemoryMappedIoSpace'] = $HighMemoryMappedIoSpace
}
if ($vm.AutomaticStopAction -ne $StopAction) {
    $settings['AutomaticStopAction'] = $StopAction
}
# A checkpoint makes the VM run from an .avhdx child, not from the staged
# disk (and a GPU-PV VM with checkpoints may not start).
if ($vm.CheckpointType -ne 'Disabled') {
    $settings['CheckpointType'] = 'Disabled'
}
if ($vm.PSObject.Properties['AutomaticCheckpointsEnabled'] -and $vm.AutomaticCheckpointsEnabled) {
    $settings['AutomaticCheckpointsEnabled'] = $false
}
if ($vm.DynamicMemoryEnabled) {
    $settings['StaticMemory'] = $true
}
if ($settings.Count -gt 0) {
    $names = ($settings.Keys | Sort-Object) -join ', '
    if ($PSCmdlet.ShouldProcess($VMName, "Set-VM $names")) {
        Set-VM -VM $vm @settings
    }
} else {
    Write-Host "VM '$VMName': cache types, memory-mapped IO, stop action, checkpoints and static memory already set"
}

# One adapter for this GPU; partition sizes are left alone (GPU-PV
# ignores them).
# An adapter added without an instance path is Hyper-V's default GPU,
# the first one listed.
$adapters = @(Get-VMGpuPartitionAdapter -VM $vm)
if ($InstancePath) {
    $adapters = @($adapters | Where-Object { $_.InstancePath -eq $InstancePath -or (-not $_.InstancePath -and $gpus[0].Name -eq $InstancePath) })
}
if ($adapters.Count -eq 0) {
    if ($PSCmdlet.ShouldProcess($VMName, 'Add-VMGpuPartitionAdapter')) {
        if ($InstancePath -and $canChoose) {
            Add-VMGpuPartitionAdapter -VM $vm -InstancePath $InstancePath
        } else {
            Add-VMGpuPartitionAdapter -VM $vm
        }
    }
} else {
    Write-Host "VM '$VMName' already has a GPU partition adapter for this GPU"
}
if (-not $WhatIfPreference) {
    Write-Host "VM '$VMName' is set up for GPU-PV; start it with Start-VM -Name '$VMName'"
}
