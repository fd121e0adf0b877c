#Requires -Version 5.1
<#
.SYNOPSIS
    Sets up the Hyper-V VM for GPU paravirtualization (GPU-PV).
.DESCRIPTION
    Written by gpupv-prep VERSION for the disk image g.vhdx.
    It checks the host first (elevation, the Hyper-V module, the VM, the GPU and
    that the host's driver package is the one staged into the image), then
    changes only what differs: a second run changes nothing.  -WhatIf shows
    the changes without making them.
    Staged: nv_dispig.inf_amd64_677da8a9230cea15, DriverVer 10/23/2023,31.0.15.4601
#>
[CmdletBinding(SupportsShouldProcess = $true)]
param(
    [string]$VMName = 'guest',
    # '' lets Hyper-V pick the GPU
    [string]$InstancePath = '',
    [UInt64]$LowMemoryMappedIoSpace = 1073741824,
    [UInt64]$HighMemoryMappedIoSpace = 34359738368,
    [switch]$SkipDriverCheck
)

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
    Write-Verbose "host driver $($pkg.Folder) $($pkg.Version) matches what was staged"
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
if ($InstancePath) {
    if ($HostBuild -lt 22000) {
        Stop-WithError "choosing the GPU with -InstancePath needs host build 22000 or later (Windows 11, Server 2022); this host is build $HostBuild. Run with -InstancePath '' for the default GPU."
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
if ($vm.AutomaticStopAction -ne 'TurnOff') {
    $settings['AutomaticStopAction'] = 'TurnOff'
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
    Write-Host "VM '$VMName': cache types, memory-mapped IO, stop action and static memory already set"
}

# One adapter for this GPU; partition sizes are left alone (GPU-PV
# ignores them).
$adapters = @(Get-VMGpuPartitionAdapter -VM $vm)
if ($InstancePath) {
    $adapters = @($adapters | Where-Object { $_.InstancePath -eq $InstancePath })
}
if ($adapters.Count -eq 0) {
    if ($PSCmdlet.ShouldProcess($VMName, 'Add-VMGpuPartitionAdapter')) {
        if ($InstancePath) {
            Add-VMGpuPartitionAdapter -VM $vm -InstancePath $InstancePath
        } else {
            Add-VMGpuPartitionAdapter -VM $vm
        }
    }
} else {
    Write-Host "VM '$VMName' already has a GPU partition adapter for this GPU"
}
Write-Host "VM '$VMName' is set up for GPU-PV; start it with Start-VM -Name '$VMName'"
