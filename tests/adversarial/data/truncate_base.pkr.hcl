variable "region" {
  type    = string
  default = "us-east-1"
}
locals {
  names = [for i in range(3) : format("ami-%03d-%s", i, var.region)]
  tags  = { for n in local.names : n => upper(n) }
}
source "amazon-ebs" "base" {
  region        = var.region
  source_ami    = "ami-12345678"
  instance_type = "t2.micro"
  ssh_username  = "ubuntu"
  ami_name      = "base-${local.names[0]}"
  tags          = local.tags
}
build {
  sources = ["source.amazon-ebs.base"]
  provisioner "shell" {
    inline = ["echo ${var.region}", <<-EOT
      multi
      line
    EOT
    ]
  }
}
