# The second example: one amazon-ebs build provisioned by an Ansible playbook (the ansible provisioner,
# through its SSH proxy adapter). Works against real AWS as is; against the local stack, give the
# stack's sshd with -var flags (see the README's set-up section). Needs ansible-playbook on PATH or
# pip install 'amibake[ansible]'.
packer {
  required_plugins {
    ansible = {
      source  = "github.com/hashicorp/ansible"
      version = ">= 1.1.0"
    }
  }
}

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "source_ami" {
  type    = string
  default = "ami-785db401"
}

variable "ssh_username" {
  type    = string
  default = "ubuntu"
}

variable "ssh_host" {
  type    = string
  default = ""
}

variable "ssh_port" {
  type    = number
  default = 22
}

source "amazon-ebs" "ansible" {
  region        = var.region
  source_ami    = var.source_ami
  instance_type = "t2.micro"
  ssh_username  = var.ssh_username
  ssh_host      = var.ssh_host
  ssh_port      = var.ssh_port
  ssh_timeout   = "2m"
  ami_name      = "ansible-example-${formatdate("YYYYMMDDhhmmss", timestamp())}"
  tags = {
    BuiltBy = "amibake"
  }
}

build {
  sources = ["source.amazon-ebs.ansible"]

  provisioner "ansible" {
    playbook_file = "${path.root}/ansible/playbook.yml"
    # Ansible logs in to the proxy as this user; its remote commands run as the communicator's user
    user = var.ssh_username
  }
}
