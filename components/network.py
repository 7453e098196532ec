"""Network: a VPC over several AZs, public subnets for the ALB, private ones for app and DB.

Security groups chain the tiers: only the load balancer reaches the app port, only the app
reaches PostgreSQL (5432). The database group has no egress at all.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from caresync_dr.names import restore_test_security_group_name, site_prefix

POSTGRES_PORT = 5432


@dataclass(frozen=True)
class NetworkArgs:
    site: str
    cidr: str
    az_count: int
    app_port: int
    # A separate group for the in-region read replicas (the primary site), so failover can
    # fence the old primary by revoking its group's ingress without cutting off the replicas.
    replica_db_group: bool = False
    # A group for databases AWS Backup restore testing creates (a writer's site): nothing may
    # reach the restored copy of PHI, and it reaches nothing.
    restore_test_group: bool = False


def subnet_cidrs(cidr: str, az_count: int) -> tuple[list[str], list[str]]:
    """(public, private) /20 subnets: public ones first, then private, one per AZ."""
    blocks = [str(b) for b in ipaddress.IPv4Network(cidr).subnets(new_prefix=20)]
    if len(blocks) < 2 * az_count:
        blocks = [str(b) for b in ipaddress.IPv4Network(cidr).subnets(
            new_prefix=ipaddress.IPv4Network(cidr).prefixlen + 4)]
    return blocks[:az_count], blocks[az_count:2 * az_count]


class Network(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    public_subnet_ids: list[pulumi.Output[str]]
    private_subnet_ids: list[pulumi.Output[str]]
    alb_security_group_id: pulumi.Output[str]
    app_security_group_id: pulumi.Output[str]
    db_security_group_id: pulumi.Output[str]
    replica_db_security_group_id: pulumi.Output[str] | None
    restore_test_security_group_id: pulumi.Output[str] | None

    def __init__(self, name: str, args: NetworkArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("caresync:dr:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        zones = aws.get_availability_zones_output(state="available")
        public_cidrs, private_cidrs = subnet_cidrs(args.cidr, args.az_count)

        vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block=args.cidr, enable_dns_hostnames=True,
                          enable_dns_support=True,
                          tags={"Name": f"{site_prefix(args.site)}"}, opts=child)
        # The VPC's default group, adopted and emptied (the provider removes every rule when it
        # adopts it): anything launched without a group of its own reaches nothing and is
        # reached by nothing (CIS AWS Foundations 5.4). Nothing here uses the default group.
        aws.ec2.DefaultSecurityGroup(f"{name}-default-sg", vpc_id=vpc.id, ingress=[], egress=[],
                                     tags={"Name": f"{site_prefix(args.site)}-default-closed"},
                                     opts=child)
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, opts=child)
        public_rt = aws.ec2.RouteTable(
            f"{name}-public-rt", vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
            opts=child)

        self.public_subnet_ids = []
        self.private_subnet_ids = []
        for i in range(args.az_count):
            az = zones.names[i]
            public = aws.ec2.Subnet(
                f"{name}-public-{i + 1}", vpc_id=vpc.id, cidr_block=public_cidrs[i],
                availability_zone=az, map_public_ip_on_launch=False,
                tags={"Name": f"{site_prefix(args.site)}-public-{i + 1}"}, opts=child)
            aws.ec2.RouteTableAssociation(f"{name}-public-{i + 1}-rta", subnet_id=public.id,
                                          route_table_id=public_rt.id, opts=child)
            # One NAT gateway per AZ: the app keeps reaching SSM/S3 when one AZ fails.
            eip = aws.ec2.Eip(f"{name}-nat-{i + 1}-eip", domain="vpc", opts=child)
            nat = aws.ec2.NatGateway(f"{name}-nat-{i + 1}", subnet_id=public.id,
                                     allocation_id=eip.id, opts=child)
            private = aws.ec2.Subnet(
                f"{name}-private-{i + 1}", vpc_id=vpc.id, cidr_block=private_cidrs[i],
                availability_zone=az, tags={"Name": f"{site_prefix(args.site)}-private-{i + 1}"},
                opts=child)
            private_rt = aws.ec2.RouteTable(
                f"{name}-private-{i + 1}-rt", vpc_id=vpc.id,
                routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0",
                                                    nat_gateway_id=nat.id)], opts=child)
            aws.ec2.RouteTableAssociation(f"{name}-private-{i + 1}-rta", subnet_id=private.id,
                                          route_table_id=private_rt.id, opts=child)
            self.public_subnet_ids.append(public.id)
            self.private_subnet_ids.append(private.id)

        alb_sg = aws.ec2.SecurityGroup(
            f"{name}-alb-sg", vpc_id=vpc.id, name=f"{site_prefix(args.site)}-alb",
            description="CareSync ALB: HTTPS and HTTP (redirected) from the internet",
            ingress=[aws.ec2.SecurityGroupIngressArgs(
                protocol="tcp", from_port=port, to_port=port, cidr_blocks=["0.0.0.0/0"],
                description=what) for port, what in ((443, "HTTPS"), (80, "HTTP redirect"))],
            opts=child)
        app_sg = aws.ec2.SecurityGroup(
            f"{name}-app-sg", vpc_id=vpc.id, name=f"{site_prefix(args.site)}-app",
            description="CareSync app: only the load balancer reaches the app port",
            ingress=[aws.ec2.SecurityGroupIngressArgs(
                protocol="tcp", from_port=args.app_port, to_port=args.app_port,
                security_groups=[alb_sg.id], description="from the ALB only")],
            egress=[aws.ec2.SecurityGroupEgressArgs(
                protocol="tcp", from_port=443, to_port=443, cidr_blocks=["0.0.0.0/0"],
                description="AWS APIs (SSM, Secrets Manager) over HTTPS"),
                aws.ec2.SecurityGroupEgressArgs(
                protocol="tcp", from_port=POSTGRES_PORT, to_port=POSTGRES_PORT,
                cidr_blocks=[args.cidr], description="PostgreSQL inside the VPC")],
            opts=child)
        # ALB -> app egress as a separate rule: the two groups refer to each other.
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-alb-to-app", security_group_id=alb_sg.id, ip_protocol="tcp",
            from_port=args.app_port, to_port=args.app_port,
            referenced_security_group_id=app_sg.id, description="to the app tier only",
            opts=child)
        def postgres_group(key: str, group_name: str, what: str) -> aws.ec2.SecurityGroup:
            # The description is immutable in EC2 (a change replaces the group): the writer's
            # keeps its original text.
            return aws.ec2.SecurityGroup(
                f"{name}-{key}", vpc_id=vpc.id, name=f"{site_prefix(args.site)}-{group_name}",
                description=f"CareSync PostgreSQL{what}: only the app tier reaches 5432",
                ingress=[aws.ec2.SecurityGroupIngressArgs(
                    protocol="tcp", from_port=POSTGRES_PORT, to_port=POSTGRES_PORT,
                    security_groups=[app_sg.id], description="from the app tier only")],
                egress=[], opts=child)

        db_sg = postgres_group("db-sg", "db", "")
        replica_sg = (postgres_group("db-replica-sg", "db-replicas", " read replicas")
                      if args.replica_db_group else None)

        restore_sg = aws.ec2.SecurityGroup(
            f"{name}-restore-test-sg", vpc_id=vpc.id,
            name=restore_test_security_group_name(args.site),
            description="CareSync databases restored by AWS Backup restore testing: no access",
            ingress=[], egress=[], opts=child) if args.restore_test_group else None

        self.vpc_id = vpc.id
        self.restore_test_security_group_id = (restore_sg.id if restore_sg is not None
                                               else None)
        self.alb_security_group_id = alb_sg.id
        self.app_security_group_id = app_sg.id
        self.db_security_group_id = db_sg.id
        self.replica_db_security_group_id = replica_sg.id if replica_sg is not None else None
        self.register_outputs({"vpcId": vpc.id, "dbSecurityGroupId": db_sg.id,
                               "publicSubnetIds": self.public_subnet_ids,
                               "privateSubnetIds": self.private_subnet_ids})
