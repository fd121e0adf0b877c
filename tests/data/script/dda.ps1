#Requires -Version 5.1
<#
.SYNOPSIS
    Assigns a GPU to the Hyper-V VM with Discrete Device Assignment (DDA).
.DESCRIPTION
    Written by gpupv-prep VERSION for the disk image g.vhdx.
    It checks the host first (elevation, the Hyper-V module, Windows Server,
    the VM, the device), then changes only what differs: a second run
    changes nothing.  A failed assignment gives the device back to the host.
    -WhatIf shows the changes without making them.  The guest uses its own
    driver, so the host's is not compared with the image.
    Staged: nv_dispig.inf_amd64_677da8a9230cea15, DriverVer 10/23/2023,31.0.15.4601
#>
[CmdletBinding(SupportsShouldProcess = $true)]
param(
    [string]$VMName = 'guest',
    [string]$LocationPath = 'PCIROOT(0)#PCI(0100)#PCI(0000)',
    # MMIO space for the device's BARs (Microsoft's DDA guide)
    [UInt64]$LowMemoryMappedIoSpace = 3221225472,
    [UInt64]$HighMemoryMappedIoSpace = 34896609280
)

# The disk gpupv-prep staged (Get-VHD's DiskIdentifier), or '' when it has
# none (raw).
$StagedDiskIdentifier = '{ID}'

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'

function Stop-WithError([string]$Message) {
    $Host.UI.WriteErrorLine("gpupv-prep script: $Message")
    exit 1
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

# DDA is a Windows Server feature: client Windows has the cmdlets, but
# Add-VMAssignableDevice fails there.
if ((Get-CimInstance -ClassName Win32_OperatingSystem).ProductType -eq 1) {
    Stop-WithError 'Discrete Device Assignment needs Windows Server; on this host use GPU-PV (gpupv-prep script without --dda).'
}
$inVm = @(Get-VMAssignableDevice -VM $vm | Where-Object { $_.LocationPath -eq $LocationPath })
$dismounted = @(Get-VMHostAssignableDevice | Where-Object { $_.LocationPath -eq $LocationPath })
$device = $null
if ($inVm.Count -eq 0 -and $dismounted.Count -eq 0) {
    # One property query for all display devices, then (for another
    # class of device) one for every present device: never one per device.
    foreach ($class in @('Display', $null)) {
        if ($class) {
            $ids = @(Get-PnpDevice -PresentOnly -Class $class -ErrorAction SilentlyContinue | ForEach-Object { $_.InstanceId })
        } else {
            $ids = @(Get-PnpDevice -PresentOnly | ForEach-Object { $_.InstanceId })
        }
        if ($ids.Count -eq 0) {
            continue
        }
        $hit = @(Get-PnpDeviceProperty -InstanceId $ids -KeyName 'DEVPKEY_Device_LocationPaths' -ErrorAction SilentlyContinue | Where-Object { $_.Data -contains $LocationPath })
        if ($hit.Count -gt 0) {
            $device = Get-PnpDevice -InstanceId $hit[0].InstanceId
            break
        }
    }
    if (-not $device) {
        Stop-WithError "no device at location path $LocationPath on this host (DEVPKEY_Device_LocationPaths)."
    }
}

# DDA: TurnOff when the host shuts down, as Microsoft's DDA guide says.
$StopAction = 'TurnOff'

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

# Disabled, dismounted, assigned: when a step fails, the steps done are
# undone (mounted back and enabled on the host), so a failure never
# leaves the GPU with neither the host nor the VM.
if ($inVm.Count -eq 0) {
    $disabledHere = $false
    $dismountedHere = $false
    try {
        if ($dismounted.Count -eq 0 -and $PSCmdlet.ShouldProcess($LocationPath, 'Disable-PnpDevice, Dismount-VMHostAssignableDevice')) {
            Disable-PnpDevice -InstanceId $device.InstanceId -Confirm:$false
            $disabledHere = $true
            Dismount-VMHostAssignableDevice -Force -LocationPath $LocationPath
            $dismountedHere = $true
        }
        if ($PSCmdlet.ShouldProcess($VMName, "Add-VMAssignableDevice $LocationPath")) {
            Add-VMAssignableDevice -LocationPath $LocationPath -VM $vm
        }
    } catch {
        $failure = $_.Exception.Message
        $undo = @()
        if ($dismountedHere) {
            try {
                Mount-VMHostAssignableDevice -LocationPath $LocationPath
                $undo += 'mounted back on the host'
            } catch {
                $undo += "NOT mounted back ($($_.Exception.Message)): run Mount-VMHostAssignableDevice -LocationPath '$LocationPath'"
            }
        }
        if ($disabledHere) {
            try {
                Enable-PnpDevice -InstanceId $device.InstanceId -Confirm:$false
                $undo += 'enabled again'
            } catch {
                $undo += "NOT enabled again ($($_.Exception.Message))"
            }
        }
        if ($undo.Count -eq 0) {
            $undo += 'nothing had changed on the host'
        }
        Stop-WithError "assigning $LocationPath to VM '$VMName' failed: $failure; the device was $($undo -join ', ')."
    }
} else {
    Write-Host "VM '$VMName' already has the device at $LocationPath"
}
if (-not $WhatIfPreference) {
    Write-Host "VM '$VMName' is set up for DDA; start it with Start-VM -Name '$VMName'"
}
