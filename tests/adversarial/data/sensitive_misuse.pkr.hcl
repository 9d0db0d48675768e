# every function that quotes a bad argument, given a sensitive one
variable "secret" {
  type      = string
  sensitive = true
}
locals {
  a = cidrhost(var.secret, 1)
  b = formatdate("YYYY", var.secret)
  c = yamldecode(var.secret)
  d = jsondecode(var.secret)
  e = base64decode(var.secret)
  f = parseint(var.secret, 10)
  g = timeadd("2020-01-01T00:00:00Z", var.secret)
  h = cidrsubnet(var.secret, 8, 1)
  i = regex(var.secret, "x")
  j = tonumber(var.secret)
  k = file(var.secret)
  l = uuidv5(var.secret, "x")
  m = textencodebase64("x", var.secret)
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
