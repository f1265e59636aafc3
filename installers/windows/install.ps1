<#
.SYNOPSIS
  LoopJam for Windows: a virtual environment, a VB-CABLE check, a Start-menu shortcut.
.DESCRIPTION
  LoopJam records what your player sends to the "CABLE Input (VB-Audio Virtual Cable)" device
  (WASAPI loopback) and plays the game's audio to your speakers. Install VB-CABLE from
  https://vb-audio.com/Cable/ (free), then set your player's output (Windows Settings > Sound >
  App volume and device preferences) to "CABLE Input".
.EXAMPLE
  powershell -ExecutionPolicy Bypass -File installers\windows\install.ps1
.EXAMPLE
  powershell -ExecutionPolicy Bypass -File installers\windows\install.ps1 -Uninstall
#>
param(
  [string]$Prefix = "$env:LOCALAPPDATA\LoopJam",
  [switch]$Uninstall
)
$ErrorActionPreference = "Stop"
$Here = Resolve-Path "$PSScriptRoot\..\.."
$Shortcut = Join-Path ([Environment]::GetFolderPath("Programs")) "LoopJam.lnk"

if ($Uninstall) {
  Remove-Item -Force -ErrorAction SilentlyContinue $Shortcut
  Remove-Item -Recurse -Force -ErrorAction SilentlyContinue "$Prefix\venv"
  Write-Host "LoopJam removed (charts kept)."
  exit 0
}

$py = Get-Command py -ErrorAction SilentlyContinue
if ($py) { $python = @("py", "-3") } else {
  $python = @((Get-Command python -ErrorAction SilentlyContinue).Source)
  if (-not $python[0]) { throw "Python 3.10+ is required: https://www.python.org/downloads/" }
}
& $python[0] $python[1..9] -c "import sys; sys.exit(sys.version_info < (3, 10))"
if ($LASTEXITCODE -ne 0) { throw "Python 3.10 or newer is required" }

New-Item -ItemType Directory -Force -Path $Prefix | Out-Null
& $python[0] $python[1..9] -m venv "$Prefix\venv"
& "$Prefix\venv\Scripts\python.exe" -m pip install --upgrade pip | Out-Null
& "$Prefix\venv\Scripts\python.exe" -m pip install --upgrade "$Here"
$loopjam = "$Prefix\venv\Scripts\loopjam.exe"

$cable = Get-CimInstance Win32_SoundDevice | Where-Object { $_.Name -like "*VB-Audio*" }
if ($cable) {
  Write-Host "VB-CABLE found. Set your player's output to 'CABLE Input (VB-Audio Virtual Cable)'."
} else {
  Write-Host "VB-CABLE is not installed. LoopJam needs it to hear your player:"
  Write-Host "  1. Download https://vb-audio.com/Cable/ and run VBCABLE_Setup_x64.exe as administrator"
  Write-Host "  2. Reboot, then set your player's output to 'CABLE Input'"
  Write-Host "  3. Run 'loopjam devices' to check LoopJam sees it"
}

$shell = New-Object -ComObject WScript.Shell
$link = $shell.CreateShortcut($Shortcut)
$link.TargetPath = "$Prefix\venv\Scripts\pythonw.exe"
$link.Arguments = "-m companion tray"
$link.WorkingDirectory = $Prefix
$link.Description = "LoopJam: play along with the music you are listening to"
$link.Save()
Write-Host "LoopJam installed: Start menu > LoopJam, or run $loopjam"
