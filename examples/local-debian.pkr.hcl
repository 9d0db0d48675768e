# amibake-local: a minimal Debian AMI built on this host, with no EC2 instance.
# The build host needs mmdebstrap, mtools, dosfstools, e2fsprogs, fdisk, qemu-system-x86 and ovmf
# (scripts/bootstrap installs them) and runs as root (mmdebstrap, the chroot mounts).

variable "region" {
  type    = string
  default = "us-east-1"
}

source "amibake-local" "debian" {
  region   = var.region
  ami_name = "debian-bookworm-local-${formatdate("YYYYMMDD-hhmm", timestamp())}"

  # the root filesystem (mmdebstrap; cached by its inputs, so a second build skips the download)
  suite      = "bookworm"
  mirror     = "http://deb.debian.org/debian"
  variant    = "minbase"
  components = ["main"]
  packages   = ["less", "curl"]

  # the disk: 2 GiB, UEFI; booted under QEMU to SSH before anything is uploaded
  volume_size       = 2
  boot_test_timeout = "10m"

  # the EBS direct upload
  snapshot_upload_workers = 16
  snapshot_tags           = { Source = "amibake-local" }

  ena_support  = true
  imds_support = "v2.0"
  tags         = { Name = "debian-bookworm-local" }
}

build {
  sources = ["source.amibake-local.debian"]

  provisioner "shell" {
    inline = ["echo 'built by amibake-local' > /etc/motd"]
  }
}
