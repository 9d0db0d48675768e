"""amibake-local: an AMI built on the build host (root filesystem, disk, boot test), uploaded with the EBS
direct APIs and registered; no EC2 instance."""
