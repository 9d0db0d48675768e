variable "n" {
  type      = number
  sensitive = true
}
variable "b" {
  type      = bool
  sensitive = true
  default   = false
}
variable "l" {
  type      = list(string)
  sensitive = true
  default   = []
}
variable "m" {
  type      = map(number)
  sensitive = true
  default   = {}
}
locals {
  x = var.n + 1
}
source "amazon-ebs" "x" {
  region        = "us-east-1"
  source_ami    = "ami-12345678"
  instance_type = "t2.micro"
  ssh_username  = "u"
  ami_name      = "n"
}
build {
  sources = ["source.amazon-ebs.x"]
}
